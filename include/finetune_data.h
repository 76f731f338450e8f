/* finetune_data.h -- the fine-tuning protocols' point sampling and augmentation
 * (i2pmae-spec.md section 8, table "Fine-tuning"; user guide docs/finetune.md).
 *
 * Sampling follows the official fine-tuning runner: from a stored cloud of P points take the
 * farthest-point-sampling candidates, n_fps = min(P, Pm * 75 / 64) of them (1200 for 1024 points,
 * 2400 for 2048, as the runner's point_all), in FPS order (start at index 0, pointops.h).
 *  - train view / vote view: Pm of the candidates drawn without replacement in random order, then
 *    the protocol's augmentation;
 *  - test view: the first Pm candidates (FPS to Pm points: the same as fps(cloud, Pm)).
 * When n_fps == P the candidates are all points (FPS would only reorder them, and the random draw
 * discards the order), so the candidate step is skipped: ScanObjectNN's "all 2048 points in
 * random order".
 * Augmentation (one stream with the draw above):
 *  - modelnet40: per-axis scale U(2/3, 3/2), then per-axis shift U(-0.2, 0.2): p' = p s + t;
 *  - scanobjectnn: per-axis scale U(0.9, 1.1), then a rotation about y by U(-pi, pi):
 *    x' = x cos a + z sin a, z' = -x sin a + z cos a.
 * Streams: train (seed, epoch, sample index), vote (seed, repeat, view, sample index): a sample's
 * view never depends on the rank that draws it or on the order samples are processed in.
 */
#ifndef I2P_FINETUNE_DATA_H
#define I2P_FINETUNE_DATA_H

#include <stdint.h>

#include "rng.h"

typedef enum { FT_MODELNET40 = 0, FT_SCANOBJECTNN = 1 } ft_protocol;

/* "modelnet40" or "scanobjectnn". */
int ft_protocol_parse(const char *s, ft_protocol *p, char *err);
const char *ft_protocol_name(ft_protocol p);

/* Candidates per cloud: min(P, Pm * 75 / 64). */
long ft_fps_count(long P, long Pm);

/* Scratch for one cloud of up to P stored points. */
typedef struct {
    long P, Pm, n_fps;
    int skip_origin;   /* FPS never picks a point of squared norm <= 1e-3 after the first (the
                          official kernel's rule, pointops.h); 1 after init, the model's
                          fps_skip_origin set by the caller */
    float *work;       /* 4P floats (FPS) */
    int32_t *idx;      /* n_fps */
    float *cand;       /* (n_fps,3) */
} ft_sampler;

int ft_sampler_init(ft_sampler *s, long P, long Pm, char *err);
void ft_sampler_free(ft_sampler *s);

/* cand (n_fps,3) <- the candidates of raw (P,3), in FPS order (a copy when n_fps == P). */
void ft_candidates(ft_sampler *s, const float *raw, float *cand);

/* idx (Pm) <- Pm distinct indices of [0, n) in random order, drawn from r (partial Fisher-Yates;
 * work holds n ints). */
void ft_choose(long n, long Pm, rng_t *r, int32_t *work, int32_t *idx);

/* out (Pm,3) <- Pm candidates drawn from r, augmented for the protocol (draws continue on r). */
void ft_random_view(ft_sampler *s, ft_protocol p, const float *cand, rng_t *r, float *out);

/* The protocol's augmentation of pts (P,3) in place, drawn from r. */
void ft_augment(ft_protocol p, float *pts, long P, rng_t *r);

/* The stream of a training sample and of one vote view. */
void ft_train_stream(rng_t *r, uint64_t seed, long epoch, long sample);
void ft_vote_stream(rng_t *r, uint64_t seed, long repeat, long view, long sample);

/* Training view of sample `sample` in `epoch`: candidates of raw, then ft_random_view. */
void ft_train_view(ft_sampler *s, ft_protocol p, const float *raw, uint64_t seed, long epoch,
                   long sample, float *out);

#endif
