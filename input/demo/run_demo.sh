#!/bin/sh
# The demo behind `make run`: synthetic data -> 2D features -> pre-training -> linear SVM, as a fair
# comparison on held-out clouds of three encoders with the same architecture (jobs/pretrain-demo.ini),
# the same SVM evaluation and the same C selection (cross-validation):
#   random init      the network's initial weights (--random-init), no training
#   3D-only          Point-M2AE-style pre-training: random masking, Chamfer loss only (no features read)
#   I2P-MAE          2D-guided masking + 3D and 2D-semantic targets
# Each over 3 seeds (initial weights, data order, masks, augmentation), reported as mean +- std; each
# SVM also with the encoder's BatchNorm statistics re-estimated on the training clouds (svm --bn-stats
# data, a diagnostic: docs/svm.md).
# Then the same three encoders (first seed) fine-tuned for a few epochs (jobs/finetune-demo.ini; the
# random-init row is `finetune --scratch`), and one few-shot setting (input/demo/fewshot_demo.sh:
# 5-way 10-shot, 3 folds) from the I2P-MAE encoder and from scratch.
# About 3 minutes on 2 idle cores (5 CPU-minutes). DEMO_STEPS sets the pre-training steps (default 250 = 10 epochs).
set -eu
BIN=${1:-./i2pmae}
OUT=${DEMO_OUT:-demo-out}
STEPS=${DEMO_STEPS:-250}
SEEDS=${DEMO_SEEDS:-"1 2 3"}
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
HERE=$(cd "$(dirname "$0")/../.." && pwd)
DEMO_INI="$HERE/jobs/pretrain-demo.ini"
MPI="mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
echo "== demo: synthetic train (400) and held-out test (200) clouds, 12 classes"
"$BIN" synth --samples 400 --points 1024 --seed 1 -o "$OUT/train.h5" --force
"$BIN" synth --samples 200 --points 1024 --seed 2 -o "$OUT/test.h5" --force
echo "== demo: multi-view 2D features (random:tiny ViT, untrained), 2 ranks x 2 pipeline stages"
mpirun -np 2 --oversubscribe --bind-to none "$BIN" extract --config "$HERE/jobs/extract-demo.ini" \
  --input "$OUT/train.h5" -o "$OUT/train-features.h5" --stages 2 --force
"$BIN" render --input "$OUT/train.h5" --sample 0 --features "$OUT/train-features.h5" -o "$OUT/train-sample0.png"
"$BIN" info "$OUT/train.h5"
svm() { # name row args...: linear SVM (C by cross-validation) of an encoder on the held-out test clouds,
  # its accuracy appended to acc-ROW.txt; then the same with the encoder's BatchNorm statistics
  # re-estimated on the training clouds (--bn-stats data, a diagnostic: docs/svm.md), to acc-bn-ROW.txt
  name=$1; row=$2; shift 2
  $MPI "$BIN" svm --config "$DEMO_INI" --data "$OUT/train.h5" --test "$OUT/test.h5" "$@" > "$OUT/svm-$name.out"
  tail -n 1 "$OUT/svm-$name.out" | sed 's/.*"accuracy":\([0-9.e-]*\).*/\1/' >> "$OUT/acc-$row.txt"
  $MPI "$BIN" svm --config "$DEMO_INI" --data "$OUT/train.h5" --test "$OUT/test.h5" "$@" --bn-stats data \
    > "$OUT/svm-bn-$name.out"
  tail -n 1 "$OUT/svm-bn-$name.out" | sed 's/.*"accuracy":\([0-9.e-]*\).*/\1/' >> "$OUT/acc-bn-$row.txt"
}
rm -f "$OUT"/acc-*.txt
for s in $SEEDS; do
  echo "== demo: seed $s: random init, 3D-only and I2P-MAE pre-training ($STEPS steps each)"
  svm "random-$s" random --random-init --seed "$s"
  rm -rf "$OUT/run-3d-$s" "$OUT/run-i2p-$s"
  $MPI "$BIN" pretrain --config "$DEMO_INI" --data "$OUT/train.h5" -o "$OUT/run-3d-$s" --seed "$s" \
    --steps "$STEPS" --masking random --loss-2d-weight 0 --log-every 50 > "$OUT/pretrain-3d-$s.out"
  svm "3d-$s" 3d --checkpoint "$(ls "$OUT"/run-3d-$s/ckpt-*.h5 | tail -n 1)"
  $MPI "$BIN" pretrain --config "$DEMO_INI" --data "$OUT/train.h5" --features "$OUT/train-features.h5" \
    -o "$OUT/run-i2p-$s" --seed "$s" --steps "$STEPS" --log-every 50 > "$OUT/pretrain-i2p-$s.out"
  svm "i2p-$s" i2p --checkpoint "$(ls "$OUT"/run-i2p-$s/ckpt-*.h5 | tail -n 1)"
done
CK=$(ls "$OUT"/run-i2p-*/ckpt-*.h5 | tail -n 1)
"$BIN" render --checkpoint "$CK" --input "$OUT/train.h5" --features "$OUT/train-features.h5" --sample 0 \
  -o "$OUT/reconstruction-train0.png" | grep 'Chamfer' || true
stats() { awk '{ x = 100 * $1; s += x; q += x * x; n++ } END { m = s / n; v = n > 1 ? (q - n * m * m) / (n - 1) : 0;
  if (v < 0) v = 0; printf "%5.1f %% +- %4.1f  (n = %d)", m, sqrt(v), n }' "$1"; }
echo "== demo: linear-SVM test accuracy on 200 held-out clouds (12 classes, chance 8.3 %), mean +- std over seeds $SEEDS"
echo "   random init (same architecture):       $(stats "$OUT/acc-random.txt")"
echo "   3D-only pre-training (Point-M2AE):     $(stats "$OUT/acc-3d.txt")"
echo "   I2P-MAE pre-training:                  $(stats "$OUT/acc-i2p.txt")"
echo "   the same, BatchNorm statistics re-estimated on the training clouds (svm --bn-stats data, a diagnostic):"
echo "   random init (same architecture):       $(stats "$OUT/acc-bn-random.txt")"
echo "   3D-only pre-training (Point-M2AE):     $(stats "$OUT/acc-bn-3d.txt")"
echo "   I2P-MAE pre-training:                  $(stats "$OUT/acc-bn-i2p.txt")"
FT_INI="$HERE/jobs/finetune-demo.ini"
S1=${SEEDS%% *}
finetune() { # name args...: fine-tune one encoder; prints "last / best" test accuracy
  rm -rf "$OUT/ft-$1"
  name=$1; shift
  $MPI "$BIN" finetune --config "$FT_INI" --data "$OUT/train.h5" --test "$OUT/test.h5" --seed "$S1" "$@" \
    -o "$OUT/ft-$name" > "$OUT/ft-$name.out"
}
field() { tail -n 1 "$1" | sed "s/.*\"$2\":\([0-9.e-]*\).*/\1/" | awk '{ printf "%5.1f %%", 100 * $1 }'; }
echo "== demo: fine-tuning (seed $S1, jobs/finetune-demo.ini) of the three encoders"
finetune random --scratch
finetune 3d --checkpoint "$(ls "$OUT"/run-3d-$S1/ckpt-*.h5 | tail -n 1)"
finetune i2p --checkpoint "$(ls "$OUT"/run-i2p-$S1/ckpt-*.h5 | tail -n 1)"
echo "== demo: fine-tuned test accuracy (seed $S1, $(grep -E '^epochs' "$FT_INI" | tr -d ' ') on 400 clouds), last epoch / best epoch"
for n in random 3d i2p; do
  case $n in random) label="random init (--scratch):               " ;; 3d) label="3D-only pre-training (Point-M2AE):     " ;;
    *) label="I2P-MAE pre-training:                  " ;; esac
  echo "   $label$(field "$OUT/ft-$n.out" test_acc_last) / $(field "$OUT/ft-$n.out" test_acc_best)"
done
. "$HERE/input/demo/fewshot_demo.sh"
fewshot_demo "$BIN" "$OUT" "$(ls "$OUT"/run-i2p-$S1/ckpt-*.h5 | tail -n 1)"
echo "   loss curves: $OUT/run-*/loss.csv, loss.png; reconstruction picture: $OUT/reconstruction-train0.png"
