# test_vit_bad_weights.sh -- every broken weights file gets one clear error naming the file and the
# tensor, under 1 and 2 ranks, and no output is left behind. Files come from
# tests/ref/make_bad_safetensors.py (standard library only: these tests never skip).
. "$(dirname "$0")/../lib.sh"

B=$T/bad
$PY "$ROOT/tests/ref/make_bad_safetensors.py" "$B" || { fail bad_files "make_bad_safetensors.py failed"; exit 0; }
O=$T/out.h5
VIT="$I2PMAE vit --input $T/none.h5 -o $O --vit"   # word-split on purpose (paths have no spaces)

expect_error missing_tensor "missing.safetensors: tensor blocks.0.attn.proj.weight: missing" $VIT "timm:$B/missing.safetensors"
expect_error wrong_shape "shape.safetensors: tensor blocks.0.mlp.fc2.weight: wrong shape \[16, 8\], expected \[8, 16\]" $VIT "timm:$B/shape.safetensors"
expect_error wrong_dtype "dtype.safetensors: tensor norm.weight: wrong dtype I32" $VIT "timm:$B/dtype.safetensors"
expect_error truncated_data "truncated.safetensors: tensor .*: data_offsets .* run past the end" $VIT "timm:$B/truncated.safetensors"
expect_error offsets_overlap "overlap.safetensors: tensors norm.weight .* and norm.bias .* overlap" $VIT "timm:$B/overlap.safetensors"
expect_error offsets_past_end "past_end.safetensors: tensor norm.bias: data_offsets .* run past the end" $VIT "timm:$B/past_end.safetensors"
expect_error header_longer_than_file "header_long.safetensors: header length 1000000000 is longer than the file" $VIT "timm:$B/header_long.safetensors"
expect_error header_not_json "not_json.safetensors: header is not a valid JSON object" $VIT "timm:$B/not_json.safetensors"
expect_error clip_without_projection "noproj_clip.safetensors: tensor visual_projection.weight: missing" $VIT "clip:$B/noproj_clip.safetensors"
expect_error b16_shape_check "good.safetensors: tensor patch_embed.proj.weight: wrong shape \[8, 3, 8, 8\], expected \[768, 3, 16, 16\]" $VIT "timm-b16:$B/good.safetensors"
expect_error clip_naming_on_timm_file "good.safetensors: tensor vision_model.embeddings.patch_embedding.weight: missing" $VIT "clip:$B/good.safetensors"
expect_error missing_file "nothere.safetensors: cannot open weights file" $VIT "clip-b16:$B/nothere.safetensors"
expect_error unknown_model "unknown model 'vgg16'" $VIT "vgg16:$B/good.safetensors"
expect_error unknown_random "unknown random model" $VIT "random:huge"
expect_error bad_precision "--precision 'fp16': must be fp32 or bf16" "$I2PMAE" vit --vit random:tiny --input x -o "$O" --precision fp16
expect_error missing_tensor_2_ranks "missing.safetensors: tensor blocks.0.attn.proj.weight: missing" mpirun -np 2 --oversubscribe --bind-to none "$I2PMAE" vit --vit "timm:$B/missing.safetensors" --input "$T/none.h5" -o "$O"
expect_error missing_input "none.h5" $VIT "timm:$B/good.safetensors"
no_file no_output_left "$O"
if have_h5py; then
  $PY -c "import h5py, numpy; h5py.File('$T/img.h5', 'w')['images'] = numpy.zeros((2, 3, 32, 32), 'f4')"
  expect_error wrong_image_size "img.h5: /images: shape must be (N, 3, 16, 16)" $VIT "timm:$B/good.safetensors" --input "$T/img.h5"
  no_file no_output_after_bad_images "$O"
else
  skip wrong_image_size "h5py not available"
fi
# issue 18 (4, 13): a zero patch size used to divide by zero (SIGFPE); an empty tensor hid an
# overlap; a duplicate key was accepted
expect_error zero_patch "zero_patch.safetensors: tensor patch_embed.proj.weight: shape \[8, 3, 0, 0\] is not a patch embedding" $VIT "timm:$B/zero_patch.safetensors"
expect_error overlap_behind_empty_tensor "overlap_empty.safetensors: tensors norm.weight .* and norm.bias .* overlap" $VIT "timm:$B/overlap_empty.safetensors"
expect_error duplicate_tensor "duplicate.safetensors: tensor norm.bias appears twice in the header" $VIT "timm:$B/duplicate.safetensors"
