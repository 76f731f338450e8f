# test_vit_ref.sh -- `i2pmae vit` against the PyTorch reference (tests/ref/vit_ref.py): small random
# ViTs in CLIP naming (F32, full CLIP file with a text tower) and timm naming (F16/BF16), fp32 and
# bf16, 1 and 2 ranks. Relative error = max|ours - ref| / max|ref| per dataset (patch, cls,
# saliency): fp32 <= 1e-4, bf16 <= 3e-2. Skipped (never passed) without python3-torch.
. "$(dirname "$0")/../lib.sh"

if ! have_torch; then
  skip vit_reference "python3-torch / h5py / numpy not available"
  exit 0
fi
R=$T/ref
if ! $PY "$ROOT/tests/ref/vit_ref.py" "$R" > "$T/ref.log" 2>&1; then
  fail vit_reference "vit_ref.py failed: $(tail -n 3 "$T/ref.log" | tr '\n' ' ')"; exit 0
fi

compare() { # name ours ref tol
  if $PY "$ROOT/tests/ref/vit_compare.py" "$2" "$3" "$4" > "$T/cmp.out" 2>&1; then
    pass "$1 ($(tr '\n' ';' < "$T/cmp.out"))"
  else
    fail "$1" "$(tr '\n' ';' < "$T/cmp.out")"
  fi
}

for m in clip timm; do
  for p in fp32 bf16; do
    tol=1e-4; [ $p = bf16 ] && tol=3e-2
    out=$T/${m}_$p.h5
    if "$I2PMAE" vit --vit "$m:$R/$m.safetensors" --input "$R/images.h5" -o "$out" --batch 2 \
         --precision $p > "$T/run.log" 2>&1; then
      compare "${m}_$p" "$out" "$R/${m}_expected.h5" $tol
    else
      fail "${m}_$p" "i2pmae vit failed: $(tail -n 2 "$T/run.log" | tr '\n' ' ')"
    fi
  done
done
# The other attention layout (heads split by a reorder; used where oneDNN has no fast strided matmul).
if I2PMAE_VIT_SPLIT_HEADS=1 "$I2PMAE" vit --vit "timm:$R/timm.safetensors" --input "$R/images.h5" \
     -o "$T/split.h5" --batch 2 > "$T/split.log" 2>&1 && grep -q "heads split by a reorder" "$T/split.log"; then
  compare timm_fp32_split_heads "$T/split.h5" "$R/timm_expected.h5" 1e-4
else
  fail timm_fp32_split_heads "run failed or did not split: $(tail -n 2 "$T/split.log" | tr '\n' ' ')"
fi
# Without avx512_bf16 (oneDNN limited to avx512_core), bf16 falls back to fp32 with a warning.
if ONEDNN_MAX_CPU_ISA=AVX512_CORE "$I2PMAE" vit --vit "clip:$R/clip.safetensors" --input "$R/images.h5" \
     -o "$T/fallback.h5" --precision bf16 > "$T/fallback.log" 2>&1 &&
   grep -q "bf16 is not supported here.*running in fp32" "$T/fallback.log" &&
   grep -q '"precision":"fp32"' "$T/fallback.log"; then
  compare bf16_falls_back_to_fp32 "$T/fallback.h5" "$R/clip_expected.h5" 1e-4
else
  fail bf16_falls_back_to_fp32 "$(grep -i 'warning\|error' "$T/fallback.log" | head -2 | tr '\n' ' ')"
fi
grep -q "oneDNN picked" "$T/run.log" && pass logs_onednn_implementation || fail logs_onednn_implementation "no 'oneDNN picked' line"
grep -q '"command":"vit"' "$T/run.log" && pass json_summary || fail json_summary "no JSON summary line"

# The features do not depend on the rank count or the batch size.
if mpirun -np 2 --oversubscribe --bind-to none "$I2PMAE" vit --vit "clip:$R/clip.safetensors" \
     --input "$R/images.h5" -o "$T/np2.h5" --batch 1 > "$T/np2.log" 2>&1; then
  compare two_ranks_batch1_same_as_one_rank "$T/np2.h5" "$T/clip_fp32.h5" 1e-6
else
  fail two_ranks_batch1_same_as_one_rank "mpirun -np 2 failed: $(tail -n 2 "$T/np2.log" | tr '\n' ' ')"
fi

# Provenance attributes: model name and the SHA-256 of the weights file.
sha=$(sha256sum "$R/clip.safetensors" | cut -d' ' -f1)
check attributes_model_and_sha256 $PY -c "
import h5py, sys
f = h5py.File('$T/clip_fp32.h5', 'r')
a = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
sys.exit(0 if a['weights_sha256'] == '$sha' and a['model'].startswith('clip') and a['precision'] == 'fp32' else 1)"
expect_error refuses_existing_output "exists" "$I2PMAE" vit --vit "clip:$R/clip.safetensors" --input "$R/images.h5" -o "$T/clip_fp32.h5"
