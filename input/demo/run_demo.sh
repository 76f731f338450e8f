#!/bin/sh
# The demo behind `make run`: synthetic data -> extract -> pretrain -> SVM. Steps that are not
# implemented yet make the demo stop with their error.
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
  --input "$OUT/train.h5" -o "$OUT/train-features.h5" --stages 2
"$BIN" render --input "$OUT/train.h5" --sample 0 --features "$OUT/train-features.h5" -o "$OUT/train-sample0.png"
"$BIN" info "$OUT/train.h5"
