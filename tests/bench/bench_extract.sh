#!/bin/sh
# bench_extract.sh -- samples/s of `i2pmae extract` with random:base (ViT-B/16 shapes, 3 views,
# 224x224) on this machine: 1 rank x 1 thread (the ideal's base), 1 rank x 2 threads, 2 ranks x 1
# thread with S=1 and with S=2; per run the share of the ranks' wall time in I/O, communication,
# pipeline idle and inside the ViT (from the JSON line's per-rank seconds; everything but the ViT --
# reading, projection, saliency, conversion, writing -- is the rest: goal under 10 % at 1 rank). Beside it, the reference: a
# ViT-B/16 forward in plain PyTorch (tests/bench/bench_extract_ref.py: fp32, 2 threads, batch 8) in
# images/s, measured in the same run. Rates are over the streaming phase (stream_samples_per_s:
# model load and file creation excluded; the JSON line also has the end-to-end samples_per_s).
# SAMPLES (default 16) and BATCH (default 4) size each run.
set -u
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${I2PMAE:=$ROOT/build/i2pmae}"
SAMPLES=${SAMPLES:-16}
BATCH=${BATCH:-4}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
T=$(mktemp -d /tmp/i2pmae-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$I2PMAE" synth --samples "$SAMPLES" --points 2048 --seed 1 -o "$T/d.h5" > /dev/null 2>&1 || { echo "synth failed"; exit 1; }
X="extract --input $T/d.h5 --vit random:base --views 3 --batch $BATCH --flush 64"
run() { # name np threads stages
  OMP_NUM_THREADS=$3 mpirun -np "$2" --oversubscribe --bind-to none -x OMP_NUM_THREADS \
    "$I2PMAE" $X --stages "$4" -o "$T/$1.h5" 2> "$T/$1.err" | tail -1 > "$T/$1.json"
  [ -s "$T/$1.json" ] || { echo "extract $1 failed: $(tail -2 "$T/$1.err")"; exit 1; }
}
run r1t1 1 1 1
run r1t2 1 2 1
run r2s1 2 1 1
run r2s2 2 1 2
ref='{}'
if /usr/bin/python3 -c 'import torch' 2> /dev/null; then
  ref=$(/usr/bin/python3 "$ROOT/tests/bench/bench_extract_ref.py") || ref='{}'
fi
/usr/bin/python3 - "$T" "$ref" << 'PY'
import json, sys
d, ref = sys.argv[1], json.loads(sys.argv[2])
runs = {k: json.load(open(f"{d}/{k}.json")) for k in ("r1t1", "r1t2", "r2s1", "r2s2")}
base = runs["r1t1"]["stream_samples_per_s"]
names = {"r1t1": "1 rank x 1 thread", "r1t2": "1 rank x 2 threads", "r2s1": "2 ranks x 1 thread, S=1",
         "r2s2": "2 ranks x 1 thread, S=2"}
for k, r in runs.items():
    sps = r["stream_samples_per_s"]
    line = (f"extract random:base 3 views, {names[k]:26s} {sps:7.3f} samples/s ({3 * sps:6.2f} images/s)"
            f"  io {100 * r['io_share']:4.1f}%  comm {100 * r['comm_share']:4.1f}%  idle {100 * r['idle_share']:4.1f}%"
            f"  ViT {100 * r.get('vit_share', 0):4.1f}%")
    if k == "r1t2":
        line += " (goal: ViT >= 90% of the stream)"
    if k.startswith("r2"):
        line += f"  vs ideal 2x(1x1) {sps / (2 * base):5.2f}"
    if "images_per_s" in ref:
        line += f"  torch/ours {ref['images_per_s'] / (3 * sps):5.2f}x"
    print(line)
if "images_per_s" in ref:
    print(f"reference: PyTorch ViT-B/16 forward fp32, 2 threads, batch 8: {ref['images_per_s']:.2f} images/s")
else:
    print("reference: torch missing: ours only")
PY
