#!/bin/sh
# The demo behind `make run`: synthetic data -> extract -> pretrain -> SVM and fine-tuning of the
# pre-trained and of a randomly initialised encoder (about 2-3 minutes on 2 cores).
set -eu
BIN=${1:-./i2pmae}
OUT=${DEMO_OUT:-demo-out}
mkdir -p "$OUT"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "== demo: synthetic train/test datasets"
"$BIN" synth --samples 400 --points 1024 --seed 1 -o "$OUT/train.h5" --force
"$BIN" synth --samples 200 --points 1024 --seed 2 -o "$OUT/test.h5" --force
echo "== demo: multi-view 2D features (random:tiny ViT, untrained), 2 ranks x 2 pipeline stages"
mpirun -np 2 --oversubscribe --bind-to none "$BIN" extract --config "$(dirname "$0")/../../jobs/extract-demo.ini" \
  --input "$OUT/train.h5" -o "$OUT/train-features.h5" --stages 2 --force
"$BIN" render --input "$OUT/train.h5" --sample 0 --features "$OUT/train-features.h5" -o "$OUT/train-sample0.png"
"$BIN" info "$OUT/train.h5"
# pre-training and SVM: 2 ranks x 1 thread (jobs/pretrain-demo.ini: a scaled-down network)
HERE=$(cd "$(dirname "$0")/../.." && pwd)
DEMO_INI="$HERE/jobs/pretrain-demo.ini"
MPI="mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
echo "== demo: pre-training (a few minutes on 2 cores; progress every 25 steps)"
rm -rf "$OUT/run"
$MPI "$BIN" pretrain --config "$DEMO_INI" --data "$OUT/train.h5" --features "$OUT/train-features.h5" \
  -o "$OUT/run"
CKPT=$(ls "$OUT"/run/ckpt-*.h5 | tail -n 1)
echo "== demo: linear SVM on the pre-trained encoder ($CKPT)"
$MPI "$BIN" svm --config "$DEMO_INI" --data "$OUT/train.h5" --test "$OUT/test.h5" --checkpoint "$CKPT" \
  | tee "$OUT/svm-pretrained.out"
echo "== demo: linear SVM on a randomly initialised encoder (baseline)"
$MPI "$BIN" svm --config "$DEMO_INI" --data "$OUT/train.h5" --test "$OUT/test.h5" --random-init \
  | tee "$OUT/svm-random.out"
FT_INI="$HERE/jobs/finetune-demo.ini"
echo "== demo: fine-tuning the pre-trained encoder (jobs/finetune-demo.ini: a few epochs)"
rm -rf "$OUT/ft-pretrained" "$OUT/ft-scratch"
$MPI "$BIN" finetune --config "$FT_INI" --data "$OUT/train.h5" --test "$OUT/test.h5" --checkpoint "$CKPT" \
  -o "$OUT/ft-pretrained" | tee "$OUT/ft-pretrained.out"
echo "== demo: fine-tuning from scratch (baseline)"
$MPI "$BIN" finetune --config "$FT_INI" --data "$OUT/train.h5" --test "$OUT/test.h5" --scratch \
  -o "$OUT/ft-scratch" | tee "$OUT/ft-scratch.out"
field() { tail -n 1 "$1" | sed "s/.*\"$2\":\([0-9.e-]*\).*/\1/" | awk '{ printf "%.1f%%", 100 * $1 }'; }
accuracy() { field "$1" accuracy; }
echo "== demo: test accuracy (12 synthetic classes, chance 8.3%)"
echo "                                 linear SVM   fine-tuned (last epoch / best epoch)"
echo "   pre-trained encoder:          $(accuracy "$OUT/svm-pretrained.out")        $(field "$OUT/ft-pretrained.out" test_acc_last) / $(field "$OUT/ft-pretrained.out" test_acc_best)   ($CKPT)"
echo "   randomly initialised encoder: $(accuracy "$OUT/svm-random.out")        $(field "$OUT/ft-scratch.out" test_acc_last) / $(field "$OUT/ft-scratch.out" test_acc_best)"
echo "   fine-tuning curves: $OUT/ft-pretrained/curves.png, $OUT/ft-scratch/curves.png"
echo "   loss curve: $OUT/run/loss.csv, $OUT/run/loss.png"
