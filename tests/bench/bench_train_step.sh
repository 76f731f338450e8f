#!/bin/sh
# One training step of the 3D network (tokenize + mask + 2D targets + forward + backward + AdamW) at
# the spec configuration (2048 points, groups 512/256/64, dims 96/192/384, ...), on 2 threads, C
# (oneDNN) beside the PyTorch reference (tests/ref/model3d_ref.py --bench) in the same run.
# Batch: BENCH_BATCH (default 16: batch 32 needs ~13 GB per side and ~6 min for the reference on 2
# busy cores; BENCH_BATCH=32 gives the spec's batch). One warm-up step each, then BENCH_STEPS (1).
# Also per timed step: minor page faults and user / system CPU time (getrusage), goals 0 and < 5 %.
# FLOPs = 2*M*K*N over every matmul executed (linear layers forward + both backward products,
# attention score and value products), counted by the C code; GFLOP/s = that / C step time.
# Then the bf16 mixed-precision step (--precision bf16: bf16 matmul inputs, f32 accumulation) of the
# same driver, fp32 and bf16 alternated BENCH_ROUNDS times (default 2) and the best of each kept, so
# both see the same share of the shared cores; the ratio fp32 / bf16 is printed beside its goal
# (>= 1.6x) with the load average and the DRAM bandwidth (tests/bench/mem_bw.c) at the start and the
# end, and the ratio of the process CPU seconds (steadier than wall time when other work shares the
# cores). BENCH_BF16=0 skips it.
# Then one fp32 run with the first stage padded to its fixed bound (BENCH_PAD=0 skips it).
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BUILD:-$ROOT/build}
B=${BENCH_BATCH:-16}
STEPS=${BENCH_STEPS:-1}
OUT=$(mktemp -d /tmp/i2pmae-bench-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
mpicc -std=c11 -O2 -fopenmp -D_GNU_SOURCE -I"$ROOT/include" "$ROOT/tests/bench/bench_train_step.c" \
  "$ROOT/tests/bench/support_bench.c" "$BUILD/libi2pmae.a" -o "$OUT/bench_c" \
  $(pkg-config --libs hdf5-openmpi libcjson inih libpng) \
  -ldnnl -llinear -lcrypto -lm || { echo "bench_train_step: cannot build the C driver"; exit 1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# the DRAM bandwidth at the start and at the end of the runs (tests/bench/mem_bw.c, STREAM triad, best
# and median of 7): the step streams GBs, and on a shared host the bandwidth moves by up to 2x within
# an hour while the arithmetic peak does not (docs/performance.md, "bandwidth"); printed beside the
# ratios so that runs at different bandwidths are not compared blind
cc -O2 -fopenmp -o "$OUT/mem_bw" "$ROOT/tests/bench/mem_bw.c" 2>/dev/null || rm -f "$OUT/mem_bw"
bandwidth() { [ -x "$OUT/mem_bw" ] && OMP_NUM_THREADS=2 "$OUT/mem_bw" 2>/dev/null | awk '{ printf "%s/%s", $2, $3 }'; }
bw0=$(bandwidth)
best_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b + 0 < a + 0) ? b : a }'; }
load0=$(load)
c_s=""; c16_s=""; cpu_s=""; cpu16_s=""
rounds=${BENCH_ROUNDS:-2}; [ "${BENCH_BF16:-1}" = 0 ] && rounds=1
r=0
while [ $r -lt "$rounds" ]; do
  r=$((r + 1))
  OMP_NUM_THREADS=2 "$OUT/bench_c" "$B" "$STEPS" 1 fp32 > "$OUT/c.txt" 2>&1 || { cat "$OUT/c.txt"; exit 1; }
  grep '^{' "$OUT/c.txt"
  c_s=$(best_of "$c_s" "$(sed -n 's/^c_seconds_per_step //p' "$OUT/c.txt")")
  cpu_s=$(best_of "$cpu_s" "$(sed -n 's/^c_cpu_seconds_per_step //p' "$OUT/c.txt")")
  [ "${BENCH_BF16:-1}" = 0 ] && break
  OMP_NUM_THREADS=2 "$OUT/bench_c" "$B" "$STEPS" 1 bf16 > "$OUT/c16.txt" 2>&1 || { cat "$OUT/c16.txt"; exit 1; }
  grep '^{' "$OUT/c16.txt"
  c16_s=$(best_of "$c16_s" "$(sed -n 's/^c_seconds_per_step //p' "$OUT/c16.txt")")
  cpu16_s=$(best_of "$cpu16_s" "$(sed -n 's/^c_cpu_seconds_per_step //p' "$OUT/c16.txt")")
done
bw1=$(bandwidth)
echo "model3d train step runs: DRAM bandwidth (STREAM triad, 2 threads, best/median GB/s) ${bw0:-unmeasured} before the fp32/bf16 rounds, ${bw1:-unmeasured} after"
# the first stage padded to the fixed bound (pad multiple 0, as before the batch-maximum padding) once,
# after the rounds, beside the best fp32 step of the default padding (docs/performance.md, "pad")
if [ "${BENCH_PAD:-1}" != 0 ]; then
  OMP_NUM_THREADS=2 "$OUT/bench_c" "$B" "$STEPS" 1 fp32 0 > "$OUT/c0.txt" 2>&1 || { cat "$OUT/c0.txt"; exit 1; }
  grep '^{' "$OUT/c0.txt"
  awk -v f="$c_s" -v z="$(sed -n 's/^c_seconds_per_step //p' "$OUT/c0.txt")" \
      -v gf="$(sed -n 's/^c_gflop_per_step //p' "$OUT/c.txt")" -v gz="$(sed -n 's/^c_gflop_per_step //p' "$OUT/c0.txt")" \
      -v b="$B" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
    printf "model3d train step fp32 (batch %d, 2 threads), stage 0 padded to the batch maximum vs the fixed bound: %.3f s vs %.3f s (%.2fx), %.1f vs %.1f GFLOP/step, load %s\n",
           b, f, z, z / f, gf, gz, l }'
fi
# steady state (the timed steps, not the warm-up) of the fp32 run: page faults and system CPU time per step
sed -n 's/.*"minor_faults_per_step": \([0-9]*\), "user_s_per_step": \([0-9.]*\), "sys_s_per_step": \([0-9.]*\).*/\1 \2 \3/p' \
  "$OUT/c.txt" | awk -v l="$(cut -d' ' -f1 /proc/loadavg)" '{
  printf "model3d train step steady state: %d minor page faults/step (goal 0), system time %.1f%% of the step CPU time (goal < 5%%), load %s\n",
         $1, ($2 + $3 > 0) ? 100 * $3 / ($2 + $3) : 0, l }'
gflop=$(sed -n 's/^c_gflop_per_step //p' "$OUT/c.txt")
# the fp32 step against the measured peak (tests/bench/cpu_peak.c on 2 threads; goal >= 60 % at batch 32)
cc -O1 -fopenmp -o "$OUT/cpu_peak" "$ROOT/tests/bench/cpu_peak.c" 2>/dev/null &&
  OMP_NUM_THREADS=2 "$OUT/cpu_peak" > "$OUT/peak.txt" 2>/dev/null &&
  awk -v g="$gflop" -v s="$c_s" -v b="$B" -v l="$(cut -d' ' -f1 /proc/loadavg)" -v bw0="${bw0:-unmeasured}" \
      -v bw1="${bw1:-unmeasured}" '{
    printf "model3d train step fp32 (batch %d, 2 threads): %.1f GFLOP/s executed = %.0f%% of the measured fp32 peak %.1f GFLOP/s (goal >= 60%% at batch 32), load %s, DRAM triad %s then %s GB/s (best/median)\n",
           b, g / s, 100 * g / s / $2, $2, l, bw0, bw1 }' "$OUT/peak.txt"
if [ -n "$c16_s" ]; then
  awk -v f="$c_s" -v h="$c16_s" -v cf="$cpu_s" -v ch="$cpu16_s" -v g="$gflop" -v b="$B" -v l0="$load0" -v l1="$(load)" -v bw0="${bw0:-unmeasured}" -v bw1="${bw1:-unmeasured}" 'BEGIN {
    printf "model3d train step bf16 vs fp32 (spec config, batch %d, 2 threads, best of the alternated runs): fp32 %.3f s, bf16 %.3f s, ratio %.2fx (goal >= 1.6x); CPU seconds fp32 %.3f, bf16 %.3f, ratio %.2fx; bf16 %.1f GFLOP/s; load average %s at the start, %s at the end; DRAM triad %s then %s GB/s (best/median)\n",
           b, f, h, f / h, cf, ch, cf / ch, g / h, l0, l1, bw0, bw1 }'
fi
if ! /usr/bin/python3 -c 'import torch, h5py' 2>/dev/null; then
  echo "model3d train step (batch $B, 2 threads): C ${c_s} s/step, ${gflop} GFLOP/step; reference SKIPPED (no torch)"
  exit 0
fi
OMP_NUM_THREADS=2 /usr/bin/python3 "$ROOT/tests/ref/model3d_ref.py" --bench --batch "$B" --steps "$STEPS" \
  --warmup 1 --threads 2 > "$OUT/ref.txt" 2>&1 || { cat "$OUT/ref.txt"; exit 1; }
grep '^{' "$OUT/ref.txt"
r_s=$(sed -n 's/^ref_seconds_per_step //p' "$OUT/ref.txt")
awk -v c="$c_s" -v r="$r_s" -v g="$gflop" -v b="$B" 'BEGIN {
  printf "model3d train step (spec config, batch %d, 2 threads): C %.3f s, PyTorch %.3f s, ratio %.2fx faster; %.1f GFLOP/step, C %.1f GFLOP/s, PyTorch %.1f GFLOP/s\n",
         b, c, r, r / c, g, g / c, g / r }'
