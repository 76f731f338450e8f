/* data_order.c -- seeded epoch shuffles and the cut of a global batch into per-rank micro-batches
 * (see data_order.h). */
#include "data_order.h"

#include "errors.h"
#include "rng.h"

#define DATA_ORDER_STREAM 0x6f72646572ull /* "order": keeps this stream apart from others */

void data_order_epoch(uint64_t seed, long epoch, long n, int64_t *perm)
{
    rng_t r;
    rng_seed(&r, seed, rng_mix(DATA_ORDER_STREAM, (uint64_t)epoch));
    for (long i = 0; i < n; i++) perm[i] = i;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)rng_below(&r, (uint64_t)i + 1);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

int step_layout_make(step_layout *l, long n, long batch, long micro, int ranks, char *err)
{
    if (batch < 1) return errf(err, "--batch %ld: must be at least 1", batch);
    if (ranks < 1) return errf(err, "%d data ranks", ranks);
    if (micro == 0) {
        if (batch % ranks)
            return errf(err, "--batch %ld is not divisible by the %d data ranks (no uneven split: "
                        "choose a batch that is a multiple of the data ranks: the ranks, or ranks / --stages)", batch, ranks);
        micro = batch / ranks;
    }
    if (micro < 1) return errf(err, "--micro-batch %ld: must be at least 1", micro);
    long per_round;
    if (__builtin_mul_overflow(micro, (long)ranks, &per_round) || per_round > batch)
        return errf(err, "--micro-batch %ld over %d data ranks is more than --batch %ld", micro, ranks,
                    batch);
    if (batch % (micro * ranks))
        return errf(err, "--batch %ld is not divisible into micro-batches of %ld over %d data ranks "
                    "(batch must be a multiple of micro-batch x ranks = %ld)", batch, micro, ranks,
                    micro * ranks);
    if (n < batch)
        return errf(err, "the dataset has %ld samples, fewer than one batch of %ld", n, batch);
    l->n = n;
    l->batch = batch;
    l->micro = micro;
    l->ranks = ranks;
    l->micro_per_step = batch / micro;
    l->micro_per_rank = l->micro_per_step / ranks;
    l->steps_per_epoch = n / batch;
    return 0;
}

void step_position(const step_layout *l, long step, long *epoch, long *pos)
{
    *epoch = step / l->steps_per_epoch;
    *pos = (step % l->steps_per_epoch) * l->batch;
}

long step_micro_index(const step_layout *l, int rank, long j)
{
    return (long)rank * l->micro_per_rank + j;
}
