#!/bin/sh
# `make bench`: runs every tests/bench/bench_*.sh in name order. Each prints one line per figure,
# ours beside the reference (numpy / PyTorch) measured in the same run, with the ratio.
# BENCH=pattern runs only matching benchmarks.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export ROOT
: "${I2PMAE:=$ROOT/build/i2pmae}"
export I2PMAE
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
rc=0
for b in "$ROOT"/tests/bench/bench_*.sh; do
  [ -f "$b" ] || continue
  if [ -n "${BENCH:-}" ] && ! echo "$b" | grep -q -- "$BENCH"; then continue; fi
  echo "== $(basename "$b" .sh)"
  sh "$b" || { echo "bench: $(basename "$b") failed"; rc=1; }
done
exit $rc
