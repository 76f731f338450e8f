/* nn_bf16.c -- the bf16 side of the layer library (nn.h): the cache's precision switch, its bf16
 * weight copy and work buffer, and the f32 -> bf16 conversion every bf16 matmul input goes through.
 *
 * The conversion rounds to nearest, ties to even, and flushes f32 subnormal inputs to a signed
 * zero: exactly what the AVX-512 BF16 instruction (vcvtne2ps2bf16) does, so its vector path and the
 * portable loop give the same bits on every machine and for every split of the work.
 */
#include "nn.h"

#include <stdlib.h>
#include <string.h>

#ifdef __x86_64__
#include <immintrin.h>
#endif

#include "errors.h"

int nn_cache_set_precision(nn_cache *c, nn_precision p, char *err)
{
    if (p == NN_BF16) {
        dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
        if (isa != dnnl_cpu_isa_avx512_core_bf16 && isa != dnnl_cpu_isa_avx512_core_amx)
            return errf(err, "--precision bf16: this CPU has neither avx512_bf16 nor AMX (oneDNN's CPU ISA "
                        "is 0x%x): bf16 matmuls would be emulated, slower than fp32", (unsigned)isa);
    }
    c->precision = p;
    return 0;
}

int nn_precision_parse(const char *s, nn_precision *p, char *err)
{
    if (!strcmp(s, "fp32")) *p = NN_FP32;
    else if (!strcmp(s, "bf16")) *p = NN_BF16;
    else return errf(err, "--precision %s: must be fp32 or bf16", s);
    return 0;
}

const char *nn_precision_name(nn_precision p) { return p == NN_BF16 ? "bf16" : "fp32"; }

void nn_cache_set_bf16_weights(nn_cache *c, const float *base, const uint16_t *copy, long count)
{
    c->wbase = base;
    c->wbf16 = copy;
    c->wcount = copy ? count : 0;
}

uint16_t *nn_bf16_buffer(nn_cache *c, long count, char *err)
{
    c->bf16_buf = nn_cache_grow(c, c->bf16_buf, &c->bf16_cap, count, sizeof *c->bf16_buf, "bf16 buffer", "values",
                                err);
    return c->bf16_buf;
}

const uint16_t *nn_bf16_weights(nn_cache *c, const float *w, long count, uint16_t *spare)
{
    if (c->wbf16 && w >= c->wbase && w + count <= c->wbase + c->wcount) return c->wbf16 + (w - c->wbase);
    nn_to_bf16(spare, w, count);
    return spare;
}

/* ---- conversion ---- */

static uint16_t bf16_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0) return (uint16_t)((u >> 16) & 0x8000u);      /* zero, subnormal */
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN: quiet */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#ifdef __x86_64__
/* stream: from the first 64-byte line boundary of dst on, the stores of whole 32-value blocks bypass the cache (non-temporal), for a
 * conversion too large for the caches (nn_to_bf16): no read of the destination's lines before they
 * are written; the same values either way. */
__attribute__((target("avx512f,avx512bf16"))) static void to_bf16_avx512(uint16_t *dst, const float *src, long n,
                                                                         int stream)
{
    long i = 0;
    if (stream) {
        for (; i < n && ((uintptr_t)(dst + i) & 63u); i++) dst[i] = bf16_of(src[i]); /* to a 64-byte line */
        for (; i + 32 <= n; i += 32) {
            __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
            _mm512_stream_si512((void *)(dst + i), (__m512i)h);
        }
        _mm_sfence(); /* the streamed stores visible before any later store of this thread */
    }
    for (; i + 32 <= n; i += 32) {
        __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
        _mm512_storeu_si512((void *)(dst + i), (__m512i)h);
    }
    if (i + 16 <= n) { /* the head rows of 16 (attention at head dimension 16) */
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
        i += 16;
    }
    for (; i < n; i++) dst[i] = bf16_of(src[i]);
}
#endif

static void to_bf16(uint16_t *dst, const float *src, long n, int stream)
{
#ifdef __x86_64__
    if (__builtin_cpu_supports("avx512bf16")) { /* a bit test of libgcc's CPU model */
        to_bf16_avx512(dst, src, n, stream);
        return;
    }
#endif
    (void)stream;
    for (long i = 0; i < n; i++) dst[i] = bf16_of(src[i]);
}

void nn_to_bf16_serial(uint16_t *dst, const float *src, long n)
{
    to_bf16(dst, src, n, 0);
}

void nn_to_bf16_serial_stream(uint16_t *dst, const float *src, long n)
{
    to_bf16(dst, src, n, 1);
}

/* Conversions of at least this many values stream their output past the caches: their traffic (6
 * bytes a value, 48 MB here) outgrows the 32 MB L3, so the reader finds little of it cached anyway.
 * Measured (tests/bench/bench_wlayout.c's section in docs/performance.md): 262144 x 512 values 35 ms
 * -> 25 ms at 1 thread. */
enum { STREAM_MIN = 1 << 23 };

void nn_to_bf16(uint16_t *dst, const float *src, long n)
{
    const long chunk = 16384;
    long n_chunks = (n + chunk - 1) / chunk;
    int stream = n >= STREAM_MIN;
#pragma omp parallel for schedule(static) if (n_chunks > 1)
    for (long j = 0; j < n_chunks; j++) {
        long a = j * chunk, len = n - a < chunk ? n - a : chunk;
        to_bf16(dst + a, src + a, len, stream);
    }
}

typedef struct { uint16_t *dst; const float *x; long N; int stream; } col_sums_bf16_arg;

/* Rows converted, then summed, per group: a group of rows (<= 16 KB) is still in the L1 cache when
 * it is summed. */
enum { SUM_GROUP_FLOATS = 4096 };

/* part (N) += the column sums of rows [r0, r1) of x (nn_col_sums_rows: each column in row order, as
 * nn_col_sums_add), the rows rounded into dst group by group just before they are summed. */
static void col_sums_bf16_block(double *part, long r0, long r1, const void *arg)
{
    const col_sums_bf16_arg *a = arg;
    long N = a->N, g = SUM_GROUP_FLOATS / N > 1 ? SUM_GROUP_FLOATS / N : 1;
    for (long r = r0; r < r1; r += g) {
        long n = r + g < r1 ? g : r1 - r;
        to_bf16(a->dst + r * N, a->x + r * N, n * N, a->stream);
        nn_col_sums_rows(part, a->x + r * N, n, N);
    }
}

void nn_col_sums_to_bf16_add(float *db, uint16_t *dst, const float *x, long M, long N, double *scratch)
{
    col_sums_bf16_arg a = {dst, x, N, M * N >= STREAM_MIN};
    nn_col_sums_by(db, M, N, scratch, col_sums_bf16_block, &a);
}
