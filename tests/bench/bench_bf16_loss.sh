#!/bin/sh
# bench_bf16_loss.sh -- the loss curve of bf16 mixed precision against fp32 on the demo network
# (jobs/pretrain-demo.ini: 256 points, batch 16 = 2 micro-batches of 8, 2D-guided masking and both
# losses) over BENCH_STEPS (default 500) steps of synthetic data (400 clouds of 1024 points, features
# by tests/ref/make_features.py), 2 threads; prints the figures of tests/e2e/test_bf16.sh's bound
# (mean |loss difference| / mean fp32 loss over the last 50 steps < 3 %, 25-step moving averages
# within 8 %) and both runs' seconds per step. A long run (~2 x 500 steps of ~0.3 s on idle cores).
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$ROOT/tests/lib.sh"
. "$ROOT/tests/e2e/pretrain_lib.sh"
export OMP_NUM_THREADS=2
STEPS=${BENCH_STEPS:-500}
if ! grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo; then echo "bench_bf16_loss: SKIP: no avx512_bf16 or AMX"; exit 0; fi
if ! have_h5py; then echo "bench_bf16_loss: SKIP: python3 h5py missing (features file)"; exit 0; fi
"$I2PMAE" synth --samples 400 --points 1024 --seed 1 -o "$T/train.h5" > /dev/null 2>&1 || exit 1
make_features "$T/train.h5" "$T/f.h5" > /dev/null 2>&1 || exit 1
for p in fp32 bf16; do
  "$I2PMAE" pretrain --config "$ROOT/jobs/pretrain-demo.ini" --data "$T/train.h5" --features "$T/f.h5" \
    -o "$T/$p" --steps "$STEPS" --precision "$p" --log-every 1 --checkpoint-every 100000 > "$T/$p.out" 2>&1 ||
    { echo "bench_bf16_loss: pretrain --precision $p failed"; tail -n 3 "$T/$p.out"; exit 1; }
done
st=$(loss_curve_stats "$T/fp32/loss.csv" "$T/bf16/loss.csv")
sec() { tail -n 1 "$1" | sed -n 's/.*"seconds_compute":\([0-9.e+-]*\).*/\1/p'; }
echo "$st" | awk -v f="$(sec "$T/fp32.out")" -v b="$(sec "$T/bf16.out")" -v n="$STEPS" -v l="$(cut -d' ' -f1-3 /proc/loadavg)" '{
  printf "bf16 loss curve (demo network, %d steps): mean |d loss| / mean loss over the last 50 steps %.2f %% (bound < 3 %%), 25-step moving averages within %.2f %% (bound < 8 %%, worst at step %d); compute fp32 %.3f s/step, bf16 %.3f s/step; load average %s\n",
         n, 100 * $2, 100 * $4, $6, f / n, b / n, l }'
