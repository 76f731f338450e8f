#!/bin/sh
# bench_pointops.sh -- FPS (32 clouds, 8192 -> 1024 points) and kNN (k = 32 around 512 centres per
# cloud) of src/pointops.c beside the numpy reference, measured in this run, with 2 OpenMP threads
# for ours (numpy's element-wise loops are single-threaded). Best of REPS (default 3).
set -u
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${BUILD:=$ROOT/build}"
REPS=${REPS:-3}
SIZES="32 8192 1024 512 32 $REPS"
ours=$(OMP_NUM_THREADS=2 "$BUILD/bench/bench_pointops" $SIZES) || { echo "bench_pointops failed"; exit 1; }
if ! /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  echo "numpy missing: ours only: $ours"; exit 0
fi
ref=$(OMP_NUM_THREADS=2 /usr/bin/python3 "$ROOT/tests/bench/bench_pointops.py" $SIZES) || { echo "numpy reference failed"; exit 1; }
/usr/bin/python3 - "$ours" "$ref" <<'PY'
import json, sys
o, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"threads (ours): {o['threads']}")
for key, what in (("fps_s", "FPS 32 clouds x 8192 -> 1024"), ("knn_s", "kNN k=32, 512 centres x 32 clouds of 8192")):
    print(f"{what:44s} ours {o[key]:8.4f} s   numpy {r[key]:8.4f} s   numpy/ours {r[key] / o[key]:6.1f}x")
PY
