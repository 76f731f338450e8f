/* part_table.c -- the category -> part-range table of part segmentation (see part_table.h). */
#include "part_table.h"

#include <stdio.h>
#include <stdlib.h>

#include "errors.h"

int part_table_from_counts(part_table *t, const int *counts, int n, char *err)
{
    if (n < 1 || n > PART_MAX_CATEGORIES)
        return errf(err, "part table: %d categories, outside [1, %d]", n, PART_MAX_CATEGORIES);
    t->n_categories = n;
    t->n_parts = 0;
    for (int c = 0; c < n; c++) {
        if (counts[c] < 1) return errf(err, "part table: category %d has %d parts (needs >= 1)", c, counts[c]);
        t->first[c] = t->n_parts;
        t->count[c] = counts[c];
        t->n_parts += counts[c];
    }
    return 0;
}

int part_table_parse(part_table *t, const char *s, char *err)
{
    int counts[PART_MAX_CATEGORIES], n = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ' ') || v < 1 || v > 100000)
            return errf(err, "part table: bad part count near \"%.20s\" in \"%.60s\"", p, s);
        if (n == PART_MAX_CATEGORIES) return errf(err, "part table: more than %d categories", PART_MAX_CATEGORIES);
        counts[n++] = (int)v;
        p = end;
    }
    if (!n) return errf(err, "part table: no part counts");
    return part_table_from_counts(t, counts, n, err);
}

void part_table_format(const part_table *t, char *out, size_t n)
{
    size_t len = 0;
    out[0] = 0;
    for (int c = 0; c < t->n_categories && len < n; c++)
        len += (size_t)snprintf(out + len, n - len, "%s%d", c ? " " : "", t->count[c]);
}

int part_table_category(const part_table *t, int p)
{
    if (p < 0 || p >= t->n_parts) return -1;
    int lo = 0, hi = t->n_categories - 1;
    while (lo < hi) { /* the last category whose first part is <= p */
        int mid = (lo + hi + 1) / 2;
        if (t->first[mid] <= p) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}
