# bench_pretrain.sh -- samples/s of `i2pmae pretrain` (the demo network, jobs/pretrain-demo.ini) at
# 1 rank x 2 threads and 2 ranks x 1 thread with the same global batch and micro-batch, and the share
# of wall time spent in the gradient all-reduce. Steady-state rate = the progress line of the last
# 8 steps; the all-reduce share is over the whole run (from the JSON line). About 2-4 minutes.
set -u
: "${ROOT:?}" "${I2PMAE:?}"
B=$(mktemp -d /tmp/i2pmae-bench.XXXXXX)
trap 'rm -rf "$B"' EXIT
INI="$ROOT/jobs/pretrain-demo.ini"
STEPS=${BENCH_PRETRAIN_STEPS:-32}
"$I2PMAE" synth --samples 128 --points 1024 --seed 1 -o "$B/d.h5" > /dev/null || exit 1
"$I2PMAE" extract --input "$B/d.h5" --vit random:tiny -o "$B/f.h5" > "$B/extract.out" 2>&1 ||
  { echo "bench_pretrain: extract failed: $(tail -1 "$B/extract.out")"; exit 1; }
run() { # label np threads
  rm -rf "$B/run"
  if [ "$2" = 1 ]; then
    OMP_NUM_THREADS=$3 "$I2PMAE" pretrain --config "$INI" --data "$B/d.h5" --features "$B/f.h5" \
      -o "$B/run" --steps "$STEPS" --log-every 8 --checkpoint-every 1000 > "$B/$1.out" 2>&1
  else
    mpirun -np "$2" --oversubscribe --bind-to none -x OMP_NUM_THREADS="$3" "$I2PMAE" pretrain \
      --config "$INI" --data "$B/d.h5" --features "$B/f.h5" -o "$B/run" --steps "$STEPS" \
      --log-every 8 --checkpoint-every 1000 > "$B/$1.out" 2>&1
  fi || { echo "bench_pretrain: $1 failed: $(tail -1 "$B/$1.out")"; exit 1; }
}
rate() { grep 'pretrain: step' "$B/$1.out" | tail -1 | sed 's/.* \([0-9.]*\) samples\/s.*/\1/'; }
share() { tail -1 "$B/$1.out" | sed 's/.*"allreduce_share":\([0-9.e-]*\).*/\1/'; }
run r1t2 1 2
run r2t1 2 1
a=$(rate r1t2); b=$(rate r2t1)
printf 'pretrain demo net, batch 16 (micro 8), %s steps:\n' "$STEPS"
printf '  1 rank  x 2 threads: %8.1f samples/s   all-reduce %5.2f%% of wall time\n' "$a" "$(awk -v s="$(share r1t2)" 'BEGIN{print 100*s}')"
printf '  2 ranks x 1 thread:  %8.1f samples/s   all-reduce %5.2f%% of wall time   (%.2fx the 1x2 rate)\n' \
  "$b" "$(awk -v s="$(share r2t1)" 'BEGIN{print 100*s}')" "$(awk -v a="$a" -v b="$b" 'BEGIN{print b/a}')"
# data preparation (reading, augmenting, gathering targets) as a share of the step's data + compute
dshare() { tail -1 "$B/$1.out" | /usr/bin/python3 -c 'import json, sys; d = json.load(sys.stdin); print("%.2f" % (100 * d["seconds_data"] / max(1e-9, d["seconds_data"] + d["seconds_compute"])))'; }
printf '  data preparation: %s%% (1x2), %s%% (2x1) of data + compute time   (goal < 5%%)\n' "$(dshare r1t2)" "$(dshare r2t1)"
ref=""
if /usr/bin/python3 -c 'import torch, numpy' > /dev/null 2>&1; then
  # PyTorch reference (tests/ref/model3d_ref.py) on the same network: tokenize, forward, backward,
  # AdamW of one micro-batch of 8 at 2 threads (the step without the data pipeline)
  ref=$(cd "$ROOT/tests/ref" && /usr/bin/python3 -c '
import model3d_ref as m
cfg = dict(points=256, groups=[64, 32, 8], k=[16, 8, 8], dims=[32, 64, 128], depths=[1, 1, 1], heads=4,
           dec_dims=[128, 64], dec_depths=[1, 1], embed_hidden=[32, 64, 128], mask_ratio=0.8,
           drop_path=0.1, views=3, feat_dim=32, grid=14, image=224)
m.config = lambda name: dict(cfg)
m.bench(8, 4, 2, 256)' 2> /dev/null | sed -n 's/^ref_seconds_per_step //p')
fi
if [ -n "$ref" ]; then
  printf '  PyTorch reference, 1 process x 2 threads: %8.1f samples/s   (ours 1x2 = %.2fx)\n' \
    "$(awk -v r="$ref" 'BEGIN{print 8/r}')" "$(awk -v a="$a" -v r="$ref" 'BEGIN{print a/(8/r)}')"
else
  echo "  PyTorch reference: skipped (python3 torch missing)"
fi
