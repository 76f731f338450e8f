#!/bin/sh
# bench_scaling.sh -- the scaling study of `i2pmae extract` (jobs/scaling-extract.ini: strong and
# weak, 1-2 ranks, S=1 and S=2) run directly with mpirun, no Slurm. One line per run: samples/s,
# speed-up and efficiency beside the ideal (the reference for scaling). CSV, PNG plots and
# Markdown tables go to $BENCH_OUT (default build/bench-scaling). SCALING_INI picks another study.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
I2PMAE=${I2PMAE:-$ROOT/build/i2pmae}
INI=${SCALING_INI:-$ROOT/jobs/scaling-extract.ini}
OUT=${BENCH_OUT:-$ROOT/build/bench-scaling}
mkdir -p "$OUT"
/usr/bin/python3 "$ROOT/slurm/scaling.py" --config "$INI" --launcher mpirun --bin "$I2PMAE" --out "$OUT" \
  > "$OUT/bench.out"
status=$?
# "scaling: extract-strong-r2-s1-t1 ... speed-up 1.85 efficiency 0.93" + the ideal for that run
awk '/^scaling: extract-/ { r = $2; sub(/.*-r/, "", r); sub(/-.*/, "", r)
       sub(/^scaling: /, ""); print $0 "   (ideal: speed-up " r ".00, efficiency 1.00)" }' "$OUT/bench.out"
for f in "$OUT"/extract-*.md; do [ -f "$f" ] && { echo "-- $(basename "$f" .md) (seconds per rank: mean)"; cat "$f"; }; done
exit $status
