#!/bin/sh
# bench_pointops.sh -- FPS (32 clouds, 8192 -> 1024 points) and kNN (k = 32 around 512 centres per
# cloud) of src/pointops.c beside the numpy reference, measured in this run, with 2 OpenMP threads
# for ours (numpy's element-wise loops are single-threaded). Best of REPS (default 3). Then the
# step's scale-0 sizes (32 clouds, 2048 -> 512, k = 16), ours with the AVX-512 paths allowed against
# the plain loops (bench_pointops ... plain), same indices required.
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
STEP="32 2048 512 512 16 $REPS"
wide=$(OMP_NUM_THREADS=2 "$BUILD/bench/bench_pointops" $STEP) &&
plain=$(OMP_NUM_THREADS=2 "$BUILD/bench/bench_pointops" $STEP plain) || { echo "bench_pointops (step sizes) failed"; exit 1; }
/usr/bin/python3 - "$wide" "$plain" <<'PY'
import json, sys
w, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
same = w["fps_index_sum"] == p["fps_index_sum"] and w["knn_index_sum"] == p["knn_index_sum"]
print(f"step sizes, AVX-512 paths {'allowed' if w['avx512'] else 'off'} against the plain loops "
      f"(indices {'the same' if same else 'DIFFERENT'}):")
for key, what in (("fps_s", "FPS 32 clouds x 2048 -> 512"), ("knn_s", "kNN k=16, 512 centres x 32 clouds of 2048")):
    print(f"{what:44s} ours {w[key]:8.4f} s   plain {p[key]:8.4f} s   plain/ours {p[key] / w[key]:6.1f}x")
sys.exit(0 if same else 1)
PY
