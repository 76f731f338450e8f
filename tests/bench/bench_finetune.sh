#!/bin/sh
# One fine-tuning training step of the classifier (tokenize + forward + loss + backward + gradient
# clip + AdamW) at the spec's ModelNet40 configuration (1024 points, groups 512/256/64, group sizes
# 48,24,24, radii 0.24,0.48,0.96, mean+max pooling, smoothing 0.2, 40 classes), on 2 threads, C
# (oneDNN, tests/bench/bench_finetune.c) beside the PyTorch float32 reference
# (tests/bench/finetune_torch.py on tests/ref/classifier_ref.py's module) in the same run; then the
# eval-mode forward (what voting runs: classifier_forward / model.eval() + no_grad) in clouds/s.
# Peak memory = VmHWM of each process (/proc/self/status) after the training steps and at the end.
# Batch: BENCH_BATCH (default 8: the spec's batch 32 does not fit beside the reference on the 24 GB
# development machine, docs/finetune.md "Performance"). One warm-up step each, then BENCH_STEPS (1);
# BENCH_EVAL_REPS (2) timed eval forwards after one warm-up. The load average is printed beside
# every figure: the machine is shared, so the ratios tell more than the seconds.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build}
B=${BENCH_BATCH:-8}
STEPS=${BENCH_STEPS:-1}
REPS=${BENCH_EVAL_REPS:-2}
OUT=$(mktemp -d /tmp/i2pmae-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
load() { uptime | sed 's/.*load average: //'; }
mpicc -std=c11 -O2 -fopenmp -D_GNU_SOURCE -I"$ROOT/include" "$ROOT/tests/bench/bench_finetune.c" \
  "$ROOT/tests/bench/support_bench.c" "$BUILD/libi2pmae.a" -o "$OUT/bench_c" \
  $(pkg-config --libs hdf5-openmpi libcjson inih libpng) \
  -ldnnl -llinear -lcrypto -lm || { echo "bench_finetune: cannot build the C driver"; exit 1; }
l0=$(load)
OMP_NUM_THREADS=2 "$OUT/bench_c" "$B" "$STEPS" 1 "$REPS" > "$OUT/c.txt" 2>&1 || { cat "$OUT/c.txt"; exit 1; }
l1=$(load)
grep '^{' "$OUT/c.txt"
v() { sed -n "s/^$1 //p" "$2"; }
c_s=$(v c_seconds_per_step "$OUT/c.txt"); c_cs=$(v c_cpu_seconds_per_step "$OUT/c.txt"); c_ec=$(v c_eval_cpu_per_cloud "$OUT/c.txt")
c_tm=$(v c_train_vmhwm_kb "$OUT/c.txt")
c_e=$(v c_eval_clouds_per_s "$OUT/c.txt"); c_m=$(v c_vmhwm_kb "$OUT/c.txt")
if ! /usr/bin/python3 -c 'import torch, h5py' 2>/dev/null; then
  echo "finetune train step (batch $B, 2 threads): C ${c_s} s/step, peak ${c_tm} kB; eval ${c_e} clouds/s; reference SKIPPED (no torch) [load $l0 / $l1]"
  exit 0
fi
OMP_NUM_THREADS=2 /usr/bin/python3 "$ROOT/tests/bench/finetune_torch.py" --batch "$B" --steps "$STEPS" \
  --warmup 1 --threads 2 --eval-reps "$REPS" > "$OUT/ref.txt" 2>&1 || { cat "$OUT/ref.txt"; exit 1; }
l2=$(load)
grep '^{' "$OUT/ref.txt"
r_s=$(v ref_seconds_per_step "$OUT/ref.txt"); r_cs=$(v ref_cpu_seconds_per_step "$OUT/ref.txt"); r_ec=$(v ref_eval_cpu_per_cloud "$OUT/ref.txt")
r_tm=$(v ref_train_vmhwm_kb "$OUT/ref.txt")
r_e=$(v ref_eval_clouds_per_s "$OUT/ref.txt"); r_m=$(v ref_vmhwm_kb "$OUT/ref.txt")
awk -v c="$c_s" -v r="$r_s" -v b="$B" -v l0="$l0" -v l1="$l1" -v l2="$l2" 'BEGIN {
  printf "finetune train step (ModelNet40 spec config, batch %d, 2 threads): C %.3f s, PyTorch %.3f s, ratio %.2fx faster [load before C %s; after C %s; after PyTorch %s]\n",
         b, c, r, r / c, l0, l1, l2 }'
awk -v c="$c_cs" -v r="$r_cs" -v b="$B" -v l="$l2" 'BEGIN {
  printf "finetune train step CPU seconds (all threads, batch %d): C %.3f s, PyTorch %.3f s, ratio %.2fx less [load %s]\n",
         b, c, r, r / c, l }'
awk -v c="$c_tm" -v r="$r_tm" -v b="$B" -v l="$l2" 'BEGIN {
  printf "finetune peak memory after the train steps (VmHWM, batch %d): C %.0f MB, PyTorch %.0f MB, ratio C/PyTorch %.2f [load %s]\n",
         b, c / 1024, r / 1024, c / r, l }'
awk -v c="$c_e" -v r="$r_e" -v b="$B" -v l="$l2" 'BEGIN {
  printf "finetune eval forward (voting, batch %d, 2 threads): C %.2f clouds/s, PyTorch %.2f clouds/s, ratio %.2fx faster [load %s]\n",
         b, c, r, c / r, l }'
awk -v c="$c_ec" -v r="$r_ec" -v l="$l2" 'BEGIN {
  printf "finetune eval forward CPU seconds per cloud: C %.3f s, PyTorch %.3f s, ratio %.2fx less [load %s]\n",
         c, r, r / c, l }'
awk -v c="$c_m" -v r="$r_m" -v l="$l2" 'BEGIN {
  printf "finetune peak memory at the end (VmHWM, train + eval): C %.0f MB, PyTorch %.0f MB [load %s]\n",
         c / 1024, r / 1024, l }'
