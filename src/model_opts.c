/* model_opts.c -- architecture options and the configuration's JSON form (see model_opts.h). */
#include "model_opts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "errors.h"

/* One field of model3d_config: its option name, the number of ints (0 = a double) and where. */
typedef struct {
    const char *name;
    int n;          /* ints in the field; 0 for a double */
    size_t offset;
    const char *help;
} field_desc;

#define F_INT(name, n, f, help) {name, n, offsetof(model3d_config, f), help}
#define F_DBL(name, f, help) {name, 0, offsetof(model3d_config, f), help}

static const field_desc fields[MODEL_OPTS_COUNT] = {
    F_INT("points", 1, points, "input points per cloud (the first P of each sample)"),
    F_INT("groups", 3, groups, "FPS centres per scale, e.g. 512,256,64"),
    F_INT("k", 3, k, "kNN neighbourhood per scale, e.g. 16,8,8"),
    F_INT("dims", 3, dims, "encoder widths, e.g. 96,192,384"),
    F_INT("depths", 3, depths, "encoder blocks per stage, e.g. 5,5,5"),
    F_INT("heads", 1, heads, "attention heads (every stage)"),
    F_INT("dec-dims", 2, dec_dims, "decoder widths, e.g. 384,192"),
    F_INT("dec-depths", 2, dec_depths, "decoder blocks, e.g. 1,1"),
    F_INT("embed-hidden", 3, embed_hidden, "mini-PointNet widths, e.g. 128,256,512"),
    F_DBL("mask-ratio", mask_ratio, "share of scale-2 tokens masked"),
    F_DBL("drop-path", drop_path, "stochastic depth rate of the last encoder block"),
    F_INT("fps-skip-origin", 1, fps_skip_origin,
          "1 (default): after the first, FPS skips points within sqrt(1e-3) of the origin, as the "
          "official pointnet2 kernel; 0: plain FPS"),
};

/* JSON keys use the struct's field names. */
static const char *json_key[MODEL_OPTS_COUNT] = {"points", "groups", "k", "dims", "depths", "heads",
                                                 "dec_dims", "dec_depths", "embed_hidden",
                                                 "mask_ratio", "drop_path", "fps_skip_origin"};

int model_opts_append(model_opts *o, cli_opt *opts, int n)
{
    cli_opt mine[MODEL_OPTS_COUNT];
    for (int i = 0; i < MODEL_OPTS_COUNT; i++)
        mine[i] = (cli_opt){fields[i].name, OPT_STRING, o->v[i], fields[i].n > 1 ? "LIST" : "X",
                            fields[i].help};
    return cmd_opts_add(opts, n, mine, MODEL_OPTS_COUNT);
}

static int field_index(const char *name)
{
    for (int i = 0; i < MODEL_OPTS_COUNT; i++)
        if (!strcmp(fields[i].name, name)) return i;
    return -1;
}

const char *model_opts_get(const model_opts *o, const char *name)
{
    int i = field_index(name);
    return i < 0 ? NULL : o->v[i];
}

int model_opts_set(model_opts *o, const char *name, const char *value)
{
    int i = field_index(name);
    if (i < 0 || strlen(value) >= sizeof o->v[i]) return -1;
    snprintf(o->v[i], sizeof o->v[i], "%s", value);
    return 0;
}

int model_opts_clear(model_opts *o, const char *name) { return model_opts_set(o, name, ""); }

static int parse_field(const field_desc *fd, const char *s, model3d_config *c, char *err)
{
    char *p = (char *)c + fd->offset;
    if (fd->n == 0) {
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || end == s || *end) return errf(err, "--%s: '%s' is not a number", fd->name, s);
        *(double *)p = v;
        return 0;
    }
    const char *q = s;
    for (int i = 0; i < fd->n; i++) {
        char *end;
        errno = 0;
        long v = strtol(q, &end, 10);
        if (errno || end == q || v < 0 || v > 1000000)
            return errf(err, "--%s: '%s' must be %d comma-separated non-negative integers", fd->name,
                        s, fd->n);
        ((int *)p)[i] = (int)v;
        q = end;
        if (i + 1 < fd->n) {
            if (*q != ',')
                return errf(err, "--%s: '%s' must be %d comma-separated integers", fd->name, s, fd->n);
            q++;
        }
    }
    if (*q) return errf(err, "--%s: '%s' must be %d comma-separated integers", fd->name, s, fd->n);
    return 0;
}

int model_opts_apply(const model_opts *o, model3d_config *c, char *err)
{
    for (int i = 0; i < MODEL_OPTS_COUNT; i++)
        if (o->v[i][0] && parse_field(&fields[i], o->v[i], c, err)) return -1;
    return 0;
}

int model_opts_apply_encoder(const model_opts *o, model3d_config *c, char *err)
{
    if (model_opts_apply(o, c, err)) return -1;
    if (!model_opts_get(o, "dec-dims")[0]) {
        c->dec_dims[0] = c->dims[2];
        c->dec_dims[1] = c->dims[1];
    }
    return 0;
}

int model_opts_parse_triple(const char *opt, const char *s, double v[3], char *err)
{
    char extra;
    if (sscanf(s, "%lf,%lf,%lf%c", &v[0], &v[1], &v[2], &extra) != 3)
        return errf(err, "--%s %s: expected three comma-separated numbers", opt, s);
    for (int i = 0; i < 3; i++)
        if (!(v[i] >= 0) || !isfinite(v[i])) return errf(err, "--%s %s: must be >= 0", opt, s);
    return 0;
}

int model_opts_check_against(const model_opts *o, const model3d_config *c, const char *what,
                             char *err)
{
    for (int i = 0; i < MODEL_OPTS_COUNT; i++) {
        if (!o->v[i][0]) continue;
        model3d_config mine = *c;
        if (parse_field(&fields[i], o->v[i], &mine, err)) return -1;
        const char *a = (const char *)&mine + fields[i].offset, *b = (const char *)c + fields[i].offset;
        size_t bytes = fields[i].n ? sizeof(int) * (size_t)fields[i].n : sizeof(double);
        if (memcmp(a, b, bytes)) {
            cJSON *j = model3d_config_to_json(c);
            char *have = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, json_key[i]));
            errf(err, "%s: configuration differs: '%s' is %s there but %s here", what, fields[i].name,
                 have ? have : "?", o->v[i]);
            free(have);
            cJSON_Delete(j);
            return -1;
        }
    }
    return 0;
}

cJSON *model3d_config_to_json(const model3d_config *c)
{
    cJSON *j = cJSON_CreateObject();
    for (int i = 0; i < MODEL_OPTS_COUNT; i++) {
        const char *p = (const char *)c + fields[i].offset;
        if (fields[i].n == 0) cJSON_AddNumberToObject(j, json_key[i], *(const double *)p);
        else if (fields[i].n == 1) cJSON_AddNumberToObject(j, json_key[i], *(const int *)p);
        else cJSON_AddItemToObject(j, json_key[i], cJSON_CreateIntArray((const int *)p, fields[i].n));
    }
    if (c->visible > 0) cJSON_AddNumberToObject(j, "visible", c->visible); /* absent: from mask_ratio */
    cJSON_AddNumberToObject(j, "views", c->views);
    cJSON_AddNumberToObject(j, "feat_dim", c->feat_dim);
    cJSON_AddNumberToObject(j, "grid", c->grid);
    cJSON_AddNumberToObject(j, "image", c->image);
    return j;
}

static int get_int(const cJSON *j, const char *key, int *out, char *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v)) return errf(err, "model configuration: '%s' missing or not a number", key);
    *out = v->valueint;
    return 0;
}

int model3d_config_from_json(const cJSON *j, model3d_config *c, char *err)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < MODEL_OPTS_COUNT; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, json_key[i]);
        char *p = (char *)c + fields[i].offset;
        if (!v && !strcmp(json_key[i], "fps_skip_origin")) continue; /* older configurations: 0 */
        if (fields[i].n == 0) {
            if (!cJSON_IsNumber(v)) return errf(err, "model configuration: '%s' missing", json_key[i]);
            *(double *)p = v->valuedouble;
        } else if (fields[i].n == 1) {
            if (get_int(j, json_key[i], (int *)p, err)) return -1;
        } else {
            if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != fields[i].n)
                return errf(err, "model configuration: '%s' must be %d integers", json_key[i],
                            fields[i].n);
            for (int k = 0; k < fields[i].n; k++)
                ((int *)p)[k] = cJSON_GetArrayItem(v, k)->valueint;
        }
    }
    if (cJSON_GetObjectItemCaseSensitive(j, "visible") && get_int(j, "visible", &c->visible, err))
        return -1;
    if (get_int(j, "views", &c->views, err) || get_int(j, "feat_dim", &c->feat_dim, err) ||
        get_int(j, "grid", &c->grid, err) || get_int(j, "image", &c->image, err))
        return -1;
    return 0;
}
