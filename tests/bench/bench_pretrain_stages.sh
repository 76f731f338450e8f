# bench_pretrain_stages.sh -- `pretrain --stages S` (pipeline parallel) against data parallel:
#  - throughput: S = 2 on 2 ranks vs data parallel on 2 ranks, same global batch and micro-batch
#    (steady-state rate: the progress line of the last BENCH_STAGES_STEPS / 2 steps);
#  - weak scaling of data parallel: 1 rank at batch BATCH / 2 vs 2 ranks at BATCH, same micro-batch
#    (steady-state rates as above; efficiency = rate(2 ranks) / (2 x rate(1 rank)));
#  - peak memory per rank (VmHWM from /usr/bin/time): S = 1 on 1 rank vs S = 2 and S = 3 (one
#    replica), with the micro-batch = the batch (one micro-batch per step, as data parallel on one
#    rank with --micro-batch 0); the same with --recompute at S = 1 and S = 3 (against S = 1
#    without it).
# Network: BENCH_STAGES_INI (default: the spec's widths and depths at 1024 points, 256/128/32 groups,
# 3D loss only, random masking: no features file needed). BENCH_STAGES_PARTS: "throughput memory"
# (default), or any of "throughput weak memory". About 10-20 minutes on the 2 shared cores.
set -u
: "${ROOT:?}" "${I2PMAE:?}"
B=$(mktemp -d /tmp/i2pmae-bench.XXXXXX)
trap 'rm -rf "$B"' EXIT
STEPS=${BENCH_STAGES_STEPS:-6}
BATCH=${BENCH_STAGES_BATCH:-16}
MICRO=${BENCH_STAGES_MICRO:-4}
INI=${BENCH_STAGES_INI:-$B/net.ini}
cat > "$B/net.ini" <<'INI'
points = 1024
groups = 256,128,32
k = 16,8,8
dims = 96,192,384
depths = 5,5,5
heads = 6
dec-dims = 384,192
dec-depths = 1,1
embed-hidden = 128,256,512
drop-path = 0.1
INI
"$I2PMAE" synth --samples 64 --points 1024 --seed 1 -o "$B/d.h5" > /dev/null || exit 1
Q="--config $INI --data $B/d.h5 --masking random --loss-2d-weight 0 --checkpoint-every 100000"
BATCH_RUN=$BATCH # global batch of the next run
run() { # label np args...
  label=$1; np=$2; shift 2
  rm -rf "$B/run"
  mpirun -np "$np" --oversubscribe --bind-to none -x OMP_NUM_THREADS=1 sh -c \
    '/usr/bin/time -f "rank $OMPI_COMM_WORLD_RANK VmHWM %M kB" "$0" "$@"' "$I2PMAE" pretrain $Q --batch "$BATCH_RUN" -o "$B/run" "$@" \
    > "$B/$label.out" 2>&1 || { echo "bench_pretrain_stages: $label failed: $(tail -1 "$B/$label.out")"; exit 1; }
}
rate() { grep 'pretrain: step' "$B/$1.out" | tail -1 | sed 's/.* \([0-9.]*\) samples\/s.*/\1/'; }
hwm() { grep 'VmHWM' "$B/$1.out" | sort | sed 's/.*VmHWM \([0-9]*\) kB/\1/' | awk '{printf "%s%.0f", (NR > 1 ? " " : ""), $1 / 1024}'; }
maxhwm() { grep 'VmHWM' "$B/$1.out" | sed 's/.*VmHWM \([0-9]*\) kB/\1/' | sort -n | tail -1; }

PARTS=${BENCH_STAGES_PARTS:-throughput memory}
half=$((STEPS / 2))
if echo "$PARTS" | grep -q throughput; then
run dp2 2 --steps "$STEPS" --log-every "$half" --micro-batch "$MICRO"
run pp2 2 --steps "$STEPS" --log-every "$half" --micro-batch "$MICRO" --stages 2
a=$(rate dp2); b=$(rate pp2)
printf 'throughput, batch %s in micro-batches of %s, %s steps (rate of the last %s):\n' "$BATCH" "$MICRO" "$STEPS" "$half"
printf '  data parallel, 2 ranks:      %8.2f samples/s\n' "$a"
printf '  --stages 2 on 2 ranks:       %8.2f samples/s  (%.0f%% of data parallel)  %s\n' "$b" \
  "$(awk -v a="$a" -v b="$b" 'BEGIN{print 100*b/a}')" "$(grep -o 'stage 0: [^;]*' "$B/pp2.out" | head -1)"

fi
if echo "$PARTS" | grep -q weak; then
BATCH_RUN=$((BATCH / 2)); run w1 1 --steps "$STEPS" --log-every "$half" --micro-batch "$MICRO"; BATCH_RUN=$BATCH
echo "$PARTS" | grep -q throughput || run dp2 2 --steps "$STEPS" --log-every "$half" --micro-batch "$MICRO"
a=$(rate w1); b=$(rate dp2)
printf 'weak scaling (data parallel), %s samples per rank per step in micro-batches of %s (rate of the last %s steps):\n' \
  "$((BATCH / 2))" "$MICRO" "$half"
printf '  1 rank:   %8.2f samples/s\n  2 ranks:  %8.2f samples/s  (efficiency %.0f%%; load %s)\n' "$a" "$b" \
  "$(awk -v a="$a" -v b="$b" 'BEGIN{print 100*b/(2*a)}')" "$(cut -d' ' -f1-3 /proc/loadavg)"
fi
echo "$PARTS" | grep -q memory || exit 0
run m1 1 --steps 2 --micro-batch "$BATCH"
run m2 2 --steps 2 --micro-batch "$BATCH" --stages 2
run m3 3 --steps 2 --micro-batch "$BATCH" --stages 3
m1=$(maxhwm m1)
printf 'peak memory per rank (VmHWM, MiB), batch = micro-batch = %s:\n' "$BATCH"
printf '  S = 1, 1 rank:   %s\n' "$(hwm m1)"
for s in 2 3; do
  printf '  S = %s, %s ranks:  %s  (largest %.0f%% of S = 1)\n' "$s" "$s" "$(hwm m$s)" \
    "$(awk -v a="$m1" -v b="$(maxhwm m$s)" 'BEGIN{print 100*b/a}')"
done
run m1r 1 --steps 2 --micro-batch "$BATCH" --recompute
run m3r 3 --steps 2 --micro-batch "$BATCH" --stages 3 --recompute
for s in 1 3; do
  printf '  with --recompute, S = %s, %s ranks:  %s  (largest %.0f%% of S = 1 without)\n' "$s" "$s" "$(hwm m${s}r)" \
    "$(awk -v a="$m1" -v b="$(maxhwm m${s}r)" 'BEGIN{print 100*b/a}')"
done
