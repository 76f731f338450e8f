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
"$BIN" info "$OUT/train.h5"
