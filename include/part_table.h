/* part_table.h -- which part labels belong to which object category, for part segmentation.
 *
 * Parts are numbered globally (ShapeNetPart: 50 parts over 16 categories) and each category owns a
 * contiguous range: category c has parts first[c] .. first[c] + count[c] - 1, the ranges in
 * category order and covering 0 .. n_parts-1. In a file the table is the root attribute
 * "parts_per_class": the counts separated by spaces ("4 2 2 4 ..."), with "n_parts" beside it.
 */
#ifndef I2P_PART_TABLE_H
#define I2P_PART_TABLE_H

#include <stddef.h>

#define PART_MAX_CATEGORIES 256

typedef struct {
    int n_categories, n_parts;
    int first[PART_MAX_CATEGORIES], count[PART_MAX_CATEGORIES];
} part_table;

/* From the counts per category (n of them, each >= 1). */
int part_table_from_counts(part_table *t, const int *counts, int n, char *err);
/* Parses "4 2 2 4 ..." (the attribute); the error names the bad token. */
int part_table_parse(part_table *t, const char *counts, char *err);
/* Writes the attribute form into out (n bytes). */
void part_table_format(const part_table *t, char *out, size_t n);
/* The category owning part p, or -1 if p is outside 0..n_parts-1. */
int part_table_category(const part_table *t, int p);

#endif
