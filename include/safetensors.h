/* safetensors.h -- read (mmap) and write Hugging Face .safetensors files.
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON
 *   {"NAME": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}}
 * then the raw little-endian data; offsets are relative to the first byte after the header.
 *
 * st_open checks the whole header before anything is read: a header length past the end of the
 * file, malformed JSON or entries, unknown dtypes, a byte count that disagrees with dtype x shape,
 * offsets that run past the end of the data (a truncated file), tensors that overlap and a name
 * given twice. Every
 * error names the file and, where there is one, the tensor. Tensors of any standard dtype may be
 * present (e.g. CLIP's I64 position_ids); st_read_f32 reads F32, F16 and BF16 only.
 *
 * Memory: st_file owns the mapping and the tensor table (st_close releases both); pointers into
 * the mapping (st_tensor_data) are valid until st_close.
 */
#ifndef I2P_SAFETENSORS_H
#define I2P_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "paths.h"

#define ST_MAX_RANK 8

typedef struct {
    char *name;
    char dtype[8];               /* "F32", "F16", "BF16", "I64", ... */
    int rank;
    int64_t shape[ST_MAX_RANK];
    size_t begin, end;           /* byte range within the data section */
} st_tensor;

typedef struct {
    char path[I2P_PATH_LEN];
    unsigned char *map;          /* the whole file */
    size_t file_bytes;
    const unsigned char *data;   /* first byte after the header */
    size_t data_bytes;
    st_tensor *tensors;          /* sorted by begin offset */
    int n_tensors;
    struct cJSON *metadata;      /* the "__metadata__" object, or NULL */
} st_file;

int st_open(st_file *f, const char *path, char *err);
void st_close(st_file *f);

/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);
/* A string value of "__metadata__", or NULL (pointer valid until st_close). */
const char *st_metadata(const st_file *f, const char *key);

/* Reads tensor `name` into out (numel floats), converting F16/BF16 to float. Errors (naming file
 * and tensor): missing tensor, dtype not F32/F16/BF16, shape different from shape[0..rank). */
int st_read_f32(const st_file *f, const char *name, int rank, const int64_t *shape, float *out,
                char *err);

/* SHA-256 of the whole file as 64 hex digits + NUL. */
void st_sha256_hex(const st_file *f, char *hex65);

/* bfloat16 conversions (round to nearest even; NaN kept). IEEE half: half.h. */
uint16_t st_f32_to_bf16(float x);
float st_bf16_to_f32(uint16_t h);

/* One tensor to write: data holds numel elements of dtype ("F32", "F16", "BF16", "I64", ...). */
typedef struct {
    const char *name;
    const char *dtype;
    int rank;
    int64_t shape[ST_MAX_RANK];
    const void *data;
} st_entry;

/* Writes the tensors in the order given (contiguous offsets) and the optional "__metadata__"
 * string pairs meta[0..2*n_meta) = key, value, ... to path (through path.partial + rename). */
int st_write(const char *path, const st_entry *entries, int n, const char *const *meta, int n_meta,
             char *err);

#endif
