/* finetune_data.c -- fine-tuning sampling and augmentation (see finetune_data.h). */
#include "finetune_data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "errors.h"
#include "pointops.h"

#define FT_TRAIN_STREAM 0x66742d747261696eull /* "ft-train" */
#define FT_VOTE_STREAM 0x66742d766f7465ull    /* "ft-vote" */
#define SCAN_SCALE_LO 0.9
#define SCAN_SCALE_HI 1.1

int ft_protocol_parse(const char *s, ft_protocol *p, char *err)
{
    if (!strcmp(s, "modelnet40")) *p = FT_MODELNET40;
    else if (!strcmp(s, "scanobjectnn")) *p = FT_SCANOBJECTNN;
    else return errf(err, "--protocol %s: must be modelnet40 or scanobjectnn", s);
    return 0;
}

const char *ft_protocol_name(ft_protocol p)
{
    return p == FT_SCANOBJECTNN ? "scanobjectnn" : "modelnet40";
}

long ft_fps_count(long P, long Pm)
{
    long n = Pm * 75 / 64;
    return n < P ? n : P;
}

int ft_sampler_init(ft_sampler *s, long P, long Pm, char *err)
{
    memset(s, 0, sizeof *s);
    if (Pm < 1 || P < Pm)
        return errf(err, "clouds of %ld points cannot give %ld", P, Pm);
    s->P = P;
    s->Pm = Pm;
    s->n_fps = ft_fps_count(P, Pm);
    s->skip_origin = 1;
    s->work = malloc(sizeof(float) * (size_t)(4 * P));
    s->idx = malloc(sizeof(int32_t) * (size_t)s->n_fps);
    s->cand = malloc(sizeof(float) * (size_t)(3 * s->n_fps));
    if (!s->work || !s->idx || !s->cand) {
        ft_sampler_free(s);
        return errf(err, "out of memory for the point sampler (%ld points)", P);
    }
    return 0;
}

void ft_sampler_free(ft_sampler *s)
{
    free(s->work);
    free(s->idx);
    free(s->cand);
    memset(s, 0, sizeof *s);
}

void ft_candidates(ft_sampler *s, const float *raw, float *cand)
{
    if (s->n_fps == s->P) {
        memcpy(cand, raw, sizeof(float) * (size_t)(3 * s->P));
        return;
    }
    fps_sample_batch_ws(raw, 1, s->P, s->n_fps, s->skip_origin, s->idx, s->work);
    pc_gather(raw, s->idx, s->n_fps, cand);
}

void ft_augment(ft_protocol p, float *pts, long P, rng_t *r)
{
    double sc[3];
    if (p == FT_MODELNET40) {
        double t[3];
        for (int k = 0; k < 3; k++) sc[k] = rng_range(r, AUGMENT_SCALE_LO, AUGMENT_SCALE_HI);
        for (int k = 0; k < 3; k++) t[k] = rng_range(r, -AUGMENT_SHIFT, AUGMENT_SHIFT);
        for (long i = 0; i < P; i++)
            for (int k = 0; k < 3; k++) pts[i * 3 + k] = (float)(pts[i * 3 + k] * sc[k] + t[k]);
        return;
    }
    for (int k = 0; k < 3; k++) sc[k] = rng_range(r, SCAN_SCALE_LO, SCAN_SCALE_HI);
    double a = rng_range(r, -M_PI, M_PI), c = cos(a), s = sin(a);
    for (long i = 0; i < P; i++) {
        double x = pts[i * 3] * sc[0], y = pts[i * 3 + 1] * sc[1], z = pts[i * 3 + 2] * sc[2];
        pts[i * 3] = (float)(x * c + z * s);
        pts[i * 3 + 1] = (float)y;
        pts[i * 3 + 2] = (float)(-x * s + z * c);
    }
}

void ft_choose(long n, long Pm, rng_t *r, int32_t *work, int32_t *idx)
{
    for (long i = 0; i < n; i++) work[i] = (int32_t)i;
    for (long i = 0; i < Pm; i++) {
        long j = i + (long)rng_below(r, (uint64_t)(n - i));
        int32_t t = work[i];
        work[i] = work[j];
        work[j] = t;
        idx[i] = work[i];
    }
}

void ft_random_view(ft_sampler *s, ft_protocol p, const float *cand, rng_t *r, float *out)
{
    ft_choose(s->n_fps, s->Pm, r, s->idx, s->idx);
    pc_gather(cand, s->idx, s->Pm, out);
    ft_augment(p, out, s->Pm, r);
}

void ft_train_stream(rng_t *r, uint64_t seed, long epoch, long sample)
{
    rng_seed(r, seed, rng_mix(FT_TRAIN_STREAM, rng_mix((uint64_t)epoch, (uint64_t)sample)));
}

void ft_vote_stream(rng_t *r, uint64_t seed, long repeat, long view, long sample)
{
    rng_seed(r, seed, rng_mix(FT_VOTE_STREAM,
                              rng_mix(rng_mix((uint64_t)repeat, (uint64_t)view), (uint64_t)sample)));
}

void ft_train_view(ft_sampler *s, ft_protocol p, const float *raw, uint64_t seed, long epoch,
                   long sample, float *out)
{
    ft_candidates(s, raw, s->cand);
    rng_t r;
    ft_train_stream(&r, seed, epoch, sample);
    ft_random_view(s, p, s->cand, &r, out);
}
