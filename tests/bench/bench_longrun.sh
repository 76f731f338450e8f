# bench_longrun.sh -- long-run parity (BENCH=longrun make bench): the demo network
# (jobs/pretrain-demo.ini, data as input/demo/run_demo.sh: 400 synthetic clouds, random:tiny
# features) pre-trained for 500 steps (20 epochs) on 2 ranks by `i2pmae pretrain` and by the
# independent PyTorch reference tests/ref/longrun_ref.py from the same initial weights, data order,
# augmentation, masks and 2D targets (drop-path 0: torch's stochastic-depth draws cannot be repeated).
# Prints the loss curves' agreement, the parameter drift at every 50 steps and the linear-SVM test
# accuracy (200 held-out clouds, the same `i2pmae svm` path) of both final encoders.
# Accepted drift: step 1 to 1e-5 relative; the mean loss of the last 50 steps to 2 %; the two
# SVM accuracies within 5 points (float32 rounding differences grow through AdamW's normalised
# updates into a different trajectory of the same training; step-by-step losses of single steps
# then differ by up to ~10 %, their averages do not). BENCH_LONGRUN_STEPS=N runs fewer steps.
# About 10-40 minutes on 2 shared cores (the reference is the slow side).
set -u
: "${ROOT:?}" "${I2PMAE:?}"
PY=/usr/bin/python3
B=${BENCH_LONGRUN_DIR:-$(mktemp -d /tmp/i2pmae-longrun.XXXXXX)}
mkdir -p "$B"
STEPS=${BENCH_LONGRUN_STEPS:-500}
INI="$ROOT/jobs/pretrain-demo.ini"
MPI="mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
$PY -c 'import torch, h5py' 2> /dev/null || { echo "bench_longrun: SKIP (python3 torch/h5py missing)"; exit 0; }
[ -f "$B/train.h5" ] || "$I2PMAE" synth --samples 400 --points 1024 --seed 1 -o "$B/train.h5" > /dev/null || exit 1
[ -f "$B/test.h5" ] || "$I2PMAE" synth --samples 200 --points 1024 --seed 2 -o "$B/test.h5" > /dev/null || exit 1
if [ ! -f "$B/train-features.h5" ]; then
  $MPI "$I2PMAE" extract --config "$ROOT/jobs/extract-demo.ini" --input "$B/train.h5" \
    -o "$B/train-features.h5" > "$B/extract.out" 2>&1 || { echo "bench_longrun: extract failed"; exit 1; }
fi
rm -rf "$B/c"
$MPI "$I2PMAE" pretrain --config "$INI" --data "$B/train.h5" --features "$B/train-features.h5" -o "$B/c" \
  --drop-path 0 --steps "$STEPS" --log-every 1 --checkpoint-every 50 --keep 100 > "$B/c.out" 2>&1 ||
  { echo "bench_longrun: pretrain failed: $(tail -1 "$B/c.out")"; exit 1; }
$PY "$ROOT/tests/ref/longrun_ref.py" --run "$B/c" --data "$B/train.h5" --features "$B/train-features.h5" \
  --ranks 2 --threads 2 --export "$B/ref-final.h5" --json "$B/parity.json" > "$B/ref.out" 2>&1 ||
  { echo "bench_longrun: reference failed: $(tail -3 "$B/ref.out")"; exit 1; }
grep '^step' "$B/ref.out"
CK=$(ls "$B"/c/ckpt-*.h5 | tail -n 1)
acc() { $MPI "$I2PMAE" svm --config "$INI" --data "$B/train.h5" --test "$B/test.h5" "$@" 2> /dev/null |
  tail -n 1 | sed 's/.*"accuracy":\([0-9.e-]*\).*/\1/'; }
ac=$(acc --checkpoint "$CK"); ar=$(acc --checkpoint "$B/ref-final.h5"); a0=$(acc --random-init)
$PY - "$B/parity.json" "$ac" "$ar" "$a0" <<'PYEOF'
import json, sys
s = json.load(open(sys.argv[1]))
ac, ar, a0 = (100 * float(x) for x in sys.argv[2:5])
print("longrun: %d steps; loss step 1 rel %.1e, first 10 max rel %.1e, median rel %.1e, max rel %.1e"
      % (s["steps"], s["loss_rel_first"], s["loss_rel_max_first10"], s["loss_rel_median"], s["loss_rel_max"]))
print("longrun: mean loss of the last 50 steps: C %.5f  reference %.5f  (rel %.2e); first 50 steps (C) %.5f"
      % (s["mean_loss_last50_c"], s["mean_loss_last50_ref"], s["mean_loss_last50_rel"], s["mean_loss_first50_c"]))
print("longrun: parameter / BN-buffer drift (rel L2): " +
      ", ".join("%s: %.1e / %.1e" % (k, v[0], v[1]) for k, v in s["param_drift"].items()))
print("longrun: linear-SVM test accuracy: C encoder %.1f %%, reference encoder %.1f %% (ratio %.3f), random init %.1f %%"
      % (ac, ar, ac / ar if ar else float("nan"), a0))
ok = s["loss_rel_first"] < 1e-5 and s["mean_loss_last50_rel"] < 0.02 and abs(ac - ar) <= 5.0
print("longrun: " + ("within the accepted drift" if ok else "OUTSIDE the accepted drift"))
sys.exit(0 if ok else 1)
PYEOF
