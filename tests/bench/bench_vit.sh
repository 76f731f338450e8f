#!/bin/sh
# bench_vit.sh -- ViT-B/16 at 224x224 (CLIP shapes, random:base weights), batch 8 and 32, 2 threads:
# images/s of ours fp32 and bf16 (`i2pmae vit`: the best batch after the first, which builds the
# primitives) beside PyTorch fp32 and bf16 (tests/bench/vit_torch.py: same shapes, same thread
# count, no_grad; best of its timed batches after a warm-up; bf16 = model.to(bfloat16) because
# torch 1.13's bf16 autocast fails in its fused attention). Best-of because ~8 people share these
# 2 cores; batch 8 runs all four twice, interleaved, and keeps the best. Prints ratios, our GFLOP/s
# and its share of the measured peak: tests/bench/cpu_peak.c runs independent FMA chains (fp32) and
# vdpbf16ps chains (bf16) on both threads at once. Measured, not assumed: AVX-512 cores differ by 2x
# (Zen 4 runs 512-bit FMAs on 256-bit halves: 32 fp32 FLOP/cycle/core; Zen 5 and Intel server cores
# 64). The clock (tests/bench/cpu_freq.c, dependent imul chain) and /proc/cpuinfo's nominal clock are
# shown to turn the peak into FLOP/cycle.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
I2PMAE=${I2PMAE:-$ROOT/build/i2pmae}
PY=/usr/bin/python3
export OMP_NUM_THREADS=2
T=$(mktemp -d /tmp/i2pmae-bench-vit.XXXXXX)
trap 'rm -rf "$T"' EXIT

# FLOPs per image (multiply-add = 2): patch embedding, 12 blocks (qkv, out proj, fc1, fc2,
# q k^T, p v), visual projection of all 197 tokens. Softmax/norms/GELU are not counted.
flop=$(awk 'BEGIN { T=197; D=768; M=3072; C=512; P=196; K=768;
  b = 2*T*D*(3*D) + 2*T*D*D + 2*T*D*M + 2*T*M*D + 2*2*T*T*D;
  printf "%.0f", 2*P*K*D + 12*b + 2*T*D*C }')
cc -O1 -o "$T/cpu_freq" "$ROOT/tests/bench/cpu_freq.c" 2>/dev/null
cc -O1 -fopenmp -o "$T/cpu_peak" "$ROOT/tests/bench/cpu_peak.c" 2>/dev/null
ghz=$("$T/cpu_freq" 2>/dev/null | awk '{print $2}')
ghz=${ghz:-0}
nominal=$(awk -F: '/cpu MHz/ { printf "%.3f", $2 / 1000; exit }' /proc/cpuinfo)
"$T/cpu_peak" "$ghz" > "$T/peak.txt" 2>/dev/null
peak=$(awk '/^peak_fp32_gflops/ { print $2 }' "$T/peak.txt"); peak=${peak:-0}
peak16=$(awk '/^peak_fp32_gflops/ { print $4 }' "$T/peak.txt"); peak16=${peak16:-0}
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), family $(awk -F: '/cpu family/ { print $2 + 0; exit }' /proc/cpuinfo) model $(awk -F: '/^model[^ ]/ || /^model\t/ { print $2 + 0; exit }' /proc/cpuinfo), 2 threads; clock measured ${ghz} GHz (nominal ${nominal} GHz); measured peak (tests/bench/cpu_peak.c, 2 threads): fp32 ${peak} GFLOP/s, bf16 ${peak16} GFLOP/s ($(sed -n 's/^per core at //p' "$T/peak.txt")); $(awk -v f="$flop" 'BEGIN { printf "%.2f", f / 1e9 }') GFLOP per image"

if ! $PY -c 'import h5py, numpy' > /dev/null 2>&1; then
  echo "bench_vit: SKIP: h5py/numpy not available (needed to write the input images)"; exit 0
fi
have_torch=1
$PY -c 'import torch' > /dev/null 2>&1 || have_torch=0

json_field() { $PY -c "import json, sys; print(json.loads([l for l in open(sys.argv[1]) if l.startswith('{')][-1])[sys.argv[2]])" "$1" "$2"; }

max_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (b + 0 > a + 0) ? b : a }'; }

for B in 8 32; do
  n=$((B * 7)); [ "$B" = 32 ] && n=$((B * 3))   # ours: batch 8: 6 timed batches; batch 32: 2
  iters=3; [ "$B" = 32 ] && iters=1             # pytorch: timed batches after its warm-up
  rounds=2; [ "$B" = 32 ] && rounds=1           # batch 8 runs everything twice, interleaved
  $PY -c "import h5py, numpy; h5py.File('$T/in.h5', 'w')['images'] = numpy.random.default_rng(0).standard_normal(($n, 3, 224, 224)).astype('f4')"
  ours_fp32=0; ours_bf16=0; torch_fp32=0; torch_bf16=0
  r=0
  while [ $r -lt $rounds ]; do
    r=$((r + 1))
    for p in fp32 bf16; do
      if "$I2PMAE" vit --vit random:base --input "$T/in.h5" -o "$T/out.h5" --force --batch "$B" \
           --precision "$p" > "$T/ours_$p.log" 2>&1; then
        v=$(json_field "$T/ours_$p.log" best_batch_images_per_s)
        eval "ours_$p=\$(max_of \$ours_$p $v)"
        [ "$(json_field "$T/ours_$p.log" precision)" = "$p" ] || echo "bench_vit: note: --precision $p fell back to $(json_field "$T/ours_$p.log" precision)"
      else
        echo "bench_vit: i2pmae vit --precision $p failed:"; tail -n 3 "$T/ours_$p.log"; exit 1
      fi
      if [ $have_torch = 1 ]; then
        v=$($PY "$ROOT/tests/bench/vit_torch.py" "$B" "$iters" "$p" | awk '{print $2}')
        eval "torch_$p=\$(max_of \$torch_$p ${v:-0})"
      fi
    done
  done
  awk -v B="$B" -v of="$ours_fp32" -v ob="$ours_bf16" -v tf="$torch_fp32" -v tb="$torch_bf16" \
      -v flop="$flop" -v peak="$peak" -v peak16="$peak16" 'BEGIN {
    printf "vit_b16 batch %2d fp32: ours %6.2f images/s, pytorch %6.2f images/s, ours/pytorch %5.2fx (goal >= 1.5x)\n", B, of, tf, (tf > 0) ? of / tf : 0
    printf "vit_b16 batch %2d bf16: ours %6.2f images/s, pytorch %6.2f images/s (model.to(bfloat16)), ours/pytorch %5.2fx; ours bf16/fp32 %5.2fx (goal >= 1.8x)\n", B, ob, tb, (tb > 0) ? ob / tb : 0, ob / of
    printf "vit_b16 batch %2d ours: fp32 %6.1f GFLOP/s = %3.0f%% of the measured fp32 peak %.1f GFLOP/s (goal >= 75%% at batch 32); bf16 %6.1f GFLOP/s = %3.0f%% of the measured bf16 peak %.1f GFLOP/s; images/s/core fp32 %.2f, bf16 %.2f\n", B, of * flop / 1e9, (peak > 0) ? 100 * of * flop / 1e9 / peak : 0, peak, ob * flop / 1e9, (peak16 > 0) ? 100 * ob * flop / 1e9 / peak16 : 0, peak16, of / 2, ob / 2
  }'
done
[ $have_torch = 1 ] || echo "bench_vit: PyTorch figures skipped: python3-torch not available"
