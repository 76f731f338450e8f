/* seg_interp.c -- PointNet++ feature propagation's interpolation (partseg_impl.h): the 3 nearest
 * centres of every point and their normalised inverse squared distances, the weighted sum and its
 * backward; and the LeakyReLU of the category feature.
 */
#include "partseg_impl.h"

void seg_interp_weights(int32_t *idx3, float *w3, const float *xyz, const float *ctr, long B, long N, long G)
{
#pragma omp parallel for schedule(static)
    for (long t = 0; t < B * N; t++) {
        long b = t / N;
        const float *p = xyz + t * 3;
        double best[3] = {1e300, 1e300, 1e300};
        long bi[3] = {0, 0, 0};
        for (long g = 0; g < G; g++) {
            const float *c = ctr + (b * G + g) * 3;
            double d = 0;
            for (int k = 0; k < 3; k++) {
                double e = (double)p[k] - (double)c[k];
                d += e * e;
            }
            if (d >= best[2]) continue; /* strict: ties keep the lower index */
            int at = 2;
            while (at > 0 && d < best[at - 1]) {
                best[at] = best[at - 1];
                bi[at] = bi[at - 1];
                at--;
            }
            best[at] = d;
            bi[at] = g;
        }
        double rec[3], sum = 0;
        for (int i = 0; i < 3; i++) {
            rec[i] = 1.0 / (best[i] + 1e-8);
            sum += rec[i];
        }
        for (int i = 0; i < 3; i++) {
            idx3[t * 3 + i] = (int32_t)bi[i];
            w3[t * 3 + i] = (float)(rec[i] / sum);
        }
    }
}

void seg_interp_forward(float *out, long ldo, const float *src, const int32_t *idx3, const float *w3, long B,
                        long N, long G, long C)
{
#pragma omp parallel for schedule(static)
    for (long t = 0; t < B * N; t++) {
        long b = t / N;
        float *o = out + t * ldo;
        for (long j = 0; j < C; j++) o[j] = 0;
        for (int i = 0; i < 3; i++) {
            const float *x = src + (b * G + idx3[t * 3 + i]) * C;
            float w = w3[t * 3 + i];
            for (long j = 0; j < C; j++) o[j] += w * x[j];
        }
    }
}

void seg_interp_backward(float *dsrc, const float *dout, long ldd, const int32_t *idx3, const float *w3, long B,
                         long N, long G, long C)
{
#pragma omp parallel for schedule(static)
    for (long b = 0; b < B; b++) /* serial within a sample: points share centres */
        for (long t = b * N; t < (b + 1) * N; t++) {
            const float *d = dout + t * ldd;
            for (int i = 0; i < 3; i++) {
                float *x = dsrc + (b * G + idx3[t * 3 + i]) * C, w = w3[t * 3 + i];
                for (long j = 0; j < C; j++) x[j] += w * d[j];
            }
        }
}

void seg_leaky_forward(float *out, const float *inp, long n, float slope)
{
    for (long i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] : slope * inp[i];
}

void seg_leaky_backward(float *dinp, const float *dout, const float *inp, long n, float slope)
{
    for (long i = 0; i < n; i++) dinp[i] += inp[i] > 0 ? dout[i] : slope * dout[i];
}
