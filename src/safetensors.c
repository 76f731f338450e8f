/* safetensors.c -- strict .safetensors reader (mmap + cJSON) and writer (see safetensors.h). */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "errors.h"
#include "half.h"

/* A header beyond this is not a real safetensors file (the format itself caps it at 100 MB). */
#define ST_MAX_HEADER_BYTES (100u << 20)

/* Bytes per element of a dtype name, 0 if unknown. */
static size_t st_dtype_bytes(const char *dtype)
{
    static const struct { const char *name; size_t bytes; } table[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
        {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1},
        {"F8_E4M3", 1}, {"F8_E5M2", 1},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(dtype, table[i].name)) return table[i].bytes;
    return 0;
}

static int cmp_begin(const void *a, const void *b)
{
    const st_tensor *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end > y->end) - (x->end < y->end);
}

/* A JSON number that is a non-negative integer below 2^53. */
static int json_u64(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v)) return -1;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

/* Parses one header entry into t (name already set). */
static int parse_entry(const st_file *f, const cJSON *e, st_tensor *t, char *err)
{
    const char *p = f->path, *n = t->name;
    if (!cJSON_IsObject(e)) return errf(err, "%s: tensor %s: header entry is not an object", p, n);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt) || !cJSON_IsArray(sh) || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return errf(err, "%s: tensor %s: header entry needs dtype, shape and data_offsets [begin, end]", p, n);
    size_t esize = st_dtype_bytes(dt->valuestring);
    if (!esize || strlen(dt->valuestring) >= sizeof t->dtype)
        return errf(err, "%s: tensor %s: unknown dtype '%s'", p, n, dt->valuestring);
    snprintf(t->dtype, sizeof t->dtype, "%s", dt->valuestring);
    t->rank = cJSON_GetArraySize(sh);
    if (t->rank > ST_MAX_RANK) return errf(err, "%s: tensor %s: rank %d is too large", p, n, t->rank);
    uint64_t bytes = esize;
    for (int i = 0; i < t->rank; i++) {
        uint64_t d;
        if (json_u64(cJSON_GetArrayItem(sh, i), &d))
            return errf(err, "%s: tensor %s: shape entry %d is not a non-negative integer", p, n, i);
        t->shape[i] = (int64_t)d;
        if (__builtin_mul_overflow(bytes, d, &bytes))
            return errf(err, "%s: tensor %s: shape is too large", p, n);
    }
    uint64_t b, en;
    if (json_u64(cJSON_GetArrayItem(of, 0), &b) || json_u64(cJSON_GetArrayItem(of, 1), &en) || en < b)
        return errf(err, "%s: tensor %s: data_offsets must be integers 0 <= begin <= end", p, n);
    t->begin = (size_t)b;
    t->end = (size_t)en;
    if (en - b != bytes)
        return errf(err, "%s: tensor %s: data_offsets [%zu, %zu) hold %zu bytes, but %s x shape needs %llu",
                    p, n, t->begin, t->end, t->end - t->begin, t->dtype, (unsigned long long)bytes);
    if (t->end > f->data_bytes)
        return errf(err, "%s: tensor %s: data_offsets [%zu, %zu) run past the end of the data "
                    "(%zu bytes after the header; truncated file?)", p, n, t->begin, t->end, f->data_bytes);
    return 0;
}

static int parse_header(st_file *f, const char *json, size_t len, char *err)
{
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return errf(err, "%s: header is not a valid JSON object (not a safetensors file?)", f->path);
    }
    int n = 0;
    for (const cJSON *e = root->child; e; e = e->next) n++;
    f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
    if (!f->tensors) {
        cJSON_Delete(root);
        return errf(err, "%s: out of memory for the header", f->path);
    }
    int rc = 0;
    for (const cJSON *e = root->child; e && !rc; e = e->next) {
        if (!strcmp(e->string, "__metadata__") ? f->metadata != NULL : st_find(f, e->string) != NULL) {
            rc = errf(err, "%s: tensor %s appears twice in the header", f->path, e->string);
            break;
        }
        if (!strcmp(e->string, "__metadata__")) {
            f->metadata = cJSON_Duplicate(e, 1);
            continue;
        }
        st_tensor *t = &f->tensors[f->n_tensors++];
        t->name = strdup(e->string);
        if (!t->name) rc = errf(err, "%s: out of memory for the header", f->path);
        else rc = parse_entry(f, e, t, err);
    }
    cJSON_Delete(root);
    if (rc) return -1;
    if (f->n_tensors > 0) qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, cmp_begin);
    /* Each non-empty tensor against the furthest-reaching one before it (an empty tensor in
     * between must not hide an overlap). */
    const st_tensor *a = NULL;
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *b = &f->tensors[i];
        if (b->end == b->begin) continue;
        if (a && b->begin < a->end)
            return errf(err, "%s: tensors %s [%zu, %zu) and %s [%zu, %zu) overlap", f->path, a->name,
                        a->begin, a->end, b->name, b->begin, b->end);
        if (!a || b->end > a->end) a = b;
    }
    return 0;
}

int st_open(st_file *f, const char *path, char *err)
{
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return errf(err, "%s: cannot open weights file: %s", path, strerror(errno));
    struct stat stbuf;
    if (fstat(fd, &stbuf) || !S_ISREG(stbuf.st_mode)) {
        close(fd);
        return errf(err, "%s: not a regular file", path);
    }
    f->file_bytes = (size_t)stbuf.st_size;
    if (f->file_bytes < 8) {
        close(fd);
        return errf(err, "%s: %zu bytes: too short for a safetensors file", path, f->file_bytes);
    }
    void *map = mmap(NULL, f->file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return errf(err, "%s: mmap failed: %s", path, strerror(errno));
    f->map = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | f->map[i];
    if (hlen > f->file_bytes - 8) {
        errf(err, "%s: header length %llu is longer than the file (%zu bytes; truncated or not a "
             "safetensors file)", path, (unsigned long long)hlen, f->file_bytes);
        st_close(f);
        return -1;
    }
    if (hlen > ST_MAX_HEADER_BYTES || hlen < 2) {
        errf(err, "%s: header length %llu is not plausible (not a safetensors file?)", path,
             (unsigned long long)hlen);
        st_close(f);
        return -1;
    }
    f->data = f->map + 8 + hlen;
    f->data_bytes = f->file_bytes - 8 - (size_t)hlen;
    if (parse_header(f, (const char *)f->map + 8, (size_t)hlen, err)) {
        st_close(f);
        return -1;
    }
    return 0;
}

void st_close(st_file *f)
{
    if (f->map) munmap(f->map, f->file_bytes);
    for (int i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    cJSON_Delete(f->metadata);
    memset(f, 0, sizeof *f);
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

const char *st_metadata(const st_file *f, const char *key)
{
    const cJSON *v = f->metadata ? cJSON_GetObjectItemCaseSensitive(f->metadata, key) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void format_shape(char *out, size_t n, int rank, const int64_t *shape)
{
    size_t k = (size_t)snprintf(out, n, "[");
    for (int i = 0; i < rank && k < n; i++)
        k += (size_t)snprintf(out + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(out + k, n - k, "]");
}

int st_read_f32(const st_file *f, const char *name, int rank, const int64_t *shape, float *out,
                char *err)
{
    const st_tensor *t = st_find(f, name);
    if (!t) return errf(err, "%s: tensor %s: missing", f->path, name);
    int same = t->rank == rank;
    for (int i = 0; same && i < rank; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[160], want[160];
        format_shape(got, sizeof got, t->rank, t->shape);
        format_shape(want, sizeof want, rank, shape);
        return errf(err, "%s: tensor %s: wrong shape %s, expected %s", f->path, name, got, want);
    }
    const unsigned char *src = f->data + t->begin;
    size_t numel = 1;
    for (int i = 0; i < rank; i++) numel *= (size_t)shape[i];
    if (!strcmp(t->dtype, "F32")) {
        memcpy(out, src, numel * 4);
    } else if (!strcmp(t->dtype, "F16") || !strcmp(t->dtype, "BF16")) {
        int bf = t->dtype[0] == 'B';
        for (size_t i = 0; i < numel; i++) {
            uint16_t h = (uint16_t)(src[2 * i] | (src[2 * i + 1] << 8));
            out[i] = bf ? st_bf16_to_f32(h) : half_to_float(h);
        }
    } else {
        return errf(err, "%s: tensor %s: wrong dtype %s, expected F32, F16 or BF16", f->path, name,
                    t->dtype);
    }
    return 0;
}

void st_sha256_hex(const st_file *f, char *hex65)
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(f->map, f->file_bytes, md, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(hex65 + 2 * i, 3, "%02x", md[i]);
}

/* ---- conversions ---- */

static uint32_t f32_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float x;
    memcpy(&x, &u, 4);
    return x;
}

uint16_t st_f32_to_bf16(float x)
{
    uint32_t u = f32_bits(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float st_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

/* ---- writer ---- */

int st_write(const char *path, const st_entry *entries, int n, const char *const *meta, int n_meta,
             char *err)
{
    cJSON *root = cJSON_CreateObject();
    if (n_meta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < n_meta; i++) cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1]);
    }
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        const st_entry *e = &entries[i];
        size_t bytes = st_dtype_bytes(e->dtype);
        if (!bytes) {
            cJSON_Delete(root);
            return errf(err, "%s: tensor %s: unknown dtype '%s'", path, e->name, e->dtype);
        }
        cJSON *t = cJSON_AddObjectToObject(root, e->name);
        cJSON_AddStringToObject(t, "dtype", e->dtype);
        cJSON *sh = cJSON_AddArrayToObject(t, "shape");
        for (int k = 0; k < e->rank; k++) {
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e->shape[k]));
            bytes *= (size_t)e->shape[k];
        }
        double offs[2] = {(double)off, (double)(off + bytes)};
        cJSON_AddItemToObject(t, "data_offsets", cJSON_CreateDoubleArray(offs, 2));
        off += bytes;
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return errf(err, "%s: out of memory for the header", path);
    size_t hlen = strlen(json);
    size_t pad = (8 - hlen % 8) % 8; /* data starts 8-byte aligned, as the Python writer does */
    atomic_file out;
    if (atomic_file_open(&out, path, err)) {
        free(json);
        return -1;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(((uint64_t)(hlen + pad)) >> (8 * i));
    int rc = atomic_file_write(&out, len8, 8, err) || atomic_file_write(&out, json, hlen, err) ||
             atomic_file_write(&out, "        ", pad, err);
    free(json);
    for (int i = 0; !rc && i < n; i++) {
        size_t bytes = st_dtype_bytes(entries[i].dtype);
        for (int k = 0; k < entries[i].rank; k++) bytes *= (size_t)entries[i].shape[k];
        rc = atomic_file_write(&out, entries[i].data, bytes, err);
    }
    if (rc || atomic_file_commit(&out, err)) return -1;
    return 0;
}
