#!/bin/sh
# bench_roofline.sh -- the roofline tables of docs/performance.md: every oneDNN primitive of the
# ViT-B/16 forward and of the 3D training step (spec configuration) with its FLOPs and bytes, our
# time inside the forward / step (oneDNN's verbose exec times), the same primitive alone (and a
# matmul with format `any`), % of the measured fp32 peak (tests/bench/cpu_peak.c); the hand-written kernels of the step (FPS, kNN,
# Chamfer, AdamW) and extract's projection alone, with their share of the step.
# Sizes: ROOFLINE_VIT_BATCH (8), ROOFLINE_M3_BATCH (8), ROOFLINE_PREC (fp32|bf16, the ViT's).
# ROOFLINE_DOC (default docs/performance.md; empty: print only) receives the tables between its
# roofline markers. ROOFLINE_RAW=FILE keeps the raw output. About 10 minutes on the shared 2-core
# machine at load ~10, 20 at load ~20.
set -u
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILD:=$ROOT/build}"
VB=${ROOFLINE_VIT_BATCH:-8}
MB=${ROOFLINE_M3_BATCH:-8}
PREC=${ROOFLINE_PREC:-fp32}
DOC=${ROOFLINE_DOC-$ROOT/docs/performance.md}
T=$(mktemp -d /tmp/i2pmae-bench-roofline.XXXXXX)
trap 'rm -rf "$T"' EXIT
export OMP_NUM_THREADS=2
cc -O1 -o "$T/cpu_freq" "$ROOT/tests/bench/cpu_freq.c" 2>/dev/null
# the clock: the fastest of 3 runs of cpu_freq; a busy machine hides it (at load ~25 it read 2.3 GHz
# where a quieter run read 4.3), so ROOFLINE_GHZ may give it, and the table says which was used
measured=$(for i in 1 2 3; do "$T/cpu_freq" 2>/dev/null; done | awk '$2 > m { m = $2 } END { print m + 0 }')
if [ -n "${ROOFLINE_GHZ:-}" ]; then
  ghz=$ROOFLINE_GHZ; clock_src="given by ROOFLINE_GHZ; tests/bench/cpu_freq.c measured $measured GHz in this run"
else
  ghz=$measured; clock_src="measured by tests/bench/cpu_freq.c"
fi
export ROOFLINE_CLOCK_SOURCE="$clock_src"
# the peak, measured (tests/bench/cpu_peak.c, FMA / vdpbf16ps chains on every thread): AVX-512 cores
# differ by 2x (Zen 4: 32 fp32 FLOP/cycle/core on 256-bit halves; Zen 5, Intel server cores: 64)
cc -O1 -fopenmp -o "$T/cpu_peak" "$ROOT/tests/bench/cpu_peak.c" 2>/dev/null &&
  "$T/cpu_peak" > "$T/peak.txt" 2>/dev/null &&
  export ROOFLINE_PEAK_FP32="$(awk '{ print $2 }' "$T/peak.txt")" ROOFLINE_PEAK_BF16="$(awk '{ print $4 }' "$T/peak.txt")"
ONEDNN_VERBOSE=1 "$BUILD/bench/bench_roofline" "$VB" "$MB" "$PREC" > "$T/raw.txt" 2> "$T/err.txt" ||
  { echo "bench_roofline failed:"; tail -n 5 "$T/err.txt"; exit 1; }
# a cache kind outside nn_kind (include/nn.h) has no label (nn_kind_name): the rows found by label,
# the side-by-side ones, would be missed
if grep -q 'kind?' "$T/raw.txt"; then
  echo "bench_roofline: primitives of a kind without a label (nn_kind in include/nn.h, nn_kind_name):"
  grep -o 'kind?[^ ]*' "$T/raw.txt" | sort -u | head -n 5
  exit 1
fi
# the peak again after the run, the higher of the two kept: one measurement taken while the shared
# host was slower read 201.7 GFLOP/s against 230.6 the day before at the same clock (docs/performance.md,
# "the step after pad and set"), which put most matmuls above 100 % of it
if [ -x "$T/cpu_peak" ] && "$T/cpu_peak" > "$T/peak2.txt" 2>/dev/null; then
  echo "bench_roofline: cpu_peak before the run: $(awk '{ print $2, $4 }' "$T/peak.txt"), after: $(awk '{ print $2, $4 }' "$T/peak2.txt") (fp32, bf16 GFLOP/s)"
  export ROOFLINE_PEAK_FP32="$(awk -v a="${ROOFLINE_PEAK_FP32:-0}" '{ print ($2 > a) ? $2 : a }' "$T/peak2.txt")"
  export ROOFLINE_PEAK_BF16="$(awk -v a="${ROOFLINE_PEAK_BF16:-0}" '{ print ($4 > a) ? $4 : a }' "$T/peak2.txt")"
fi
[ -n "${ROOFLINE_RAW:-}" ] && cp "$T/raw.txt" "$ROOFLINE_RAW"
/usr/bin/python3 "$ROOT/tests/bench/roofline.py" "$T/raw.txt" "$ghz" "$OMP_NUM_THREADS" "$PREC" $DOC ||
  { echo "roofline.py failed"; exit 1; }
[ -n "$DOC" ] && echo "bench_roofline: tables written to $DOC"
exit 0
