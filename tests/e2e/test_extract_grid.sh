# test_extract_grid.sh -- `extract` does not depend on the grid: -np 1, -np 2 (S=1), -np 2 (S=2),
# -np 4 (S=2) give identical feature datasets (h5diff silent on every dataset), also with uneven
# blocks and a partial last micro-batch (37 samples, batch 3). Every run uses the same
# OMP_NUM_THREADS=1, so oneDNN picks the same kernels everywhere; micro-batches are padded to the
# full batch, so every image goes through identically shaped primitives, and a stage split only
# hands the exact float token buffer from one rank to the next: no arithmetic changes, hence the
# bitwise comparison. Content checked independently by tests/ref/check_features.py.
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1
VIT=${I2PMAE_TEST_VIT:-random:tiny}
N=37
"$I2PMAE" synth --samples $N --points 128 --seed 11 -o "$T/d.h5" > /dev/null 2>&1 || fail synth "could not make test data"
X="extract --input $T/d.h5 --vit $VIT --batch 3 --flush 5"

check extract_np1 "$I2PMAE" $X -o "$T/g1.h5"
check extract_np2_s1 mpi 2 -x OMP_NUM_THREADS "$I2PMAE" $X -o "$T/g2.h5"
check extract_np2_s2 mpi 2 -x OMP_NUM_THREADS "$I2PMAE" $X --stages 2 -o "$T/g2s.h5"
check extract_np4_s2 mpi 4 -x OMP_NUM_THREADS "$I2PMAE" $X --stages 2 -o "$T/g4s.h5"
for f in g2 g2s g4s; do
  out=""
  for d in patch cls saliency pixel point_saliency label done; do
    out="$out$(h5diff "$T/g1.h5" "$T/$f.h5" /$d /$d 2>&1)"
  done
  if [ -z "$out" ] && [ -f "$T/$f.h5" ]; then pass "identical_datasets_np1_vs_$f"; else fail "identical_datasets_np1_vs_$f" "$(echo "$out" | head -c 300)"; fi
done
# the comparison can fail: another batch size pads differently but must still agree; a different
# view count must not
"$I2PMAE" $X --views 2 -o "$T/v2.h5" > /dev/null 2>&1
if [ -z "$(h5diff "$T/g1.h5" "$T/v2.h5" /saliency /saliency 2>&1)" ]; then
  fail grid_comparison_can_fail "2 views gave the same saliency as 3"; else pass grid_comparison_can_fail; fi
check extract_batch_independent sh -c "'$I2PMAE' extract --input '$T/d.h5' --vit $VIT --batch 5 -o '$T/b5.h5' > /dev/null 2>&1 && [ -z \"\$(h5diff '$T/g1.h5' '$T/b5.h5' /patch /patch)\" ]"
check extract_json_summary sh -c "tail -1 '$T/check.out' >/dev/null; '$I2PMAE' $X -o '$T/j.h5' | tail -1 | grep -q '\"command\":\"extract\".*\"samples\":$N.*\"samples_per_s\".*\"per_rank\":\[{\"rank\":0,\"compute_s\"'"
# the ViT's seconds are part of each rank's compute seconds; vit_share is their share of the stream
"$I2PMAE" $X -o "$T/j2.h5" 2> /dev/null | tail -1 > "$T/j2.json"
check extract_json_vit_share $PY -c "
import json; d = json.load(open('$T/j2.json'))
assert 0 < d['vit_share'] <= 1, d['vit_share']
assert all(0 < r['vit_s'] <= r['compute_s'] for r in d['per_rank']), d['per_rank']
"
check extract_fp32_storage "$I2PMAE" $X --fp32 -o "$T/f32.h5"
if have_torch; then
  check features_reference_np4 $PY "$ROOT/tests/ref/check_features.py" "$T/d.h5" "$T/g4s.h5"
  check features_reference_fp32 $PY "$ROOT/tests/ref/check_features.py" "$T/d.h5" "$T/f32.h5" --fp32
  check half_is_round_to_nearest_even $PY -c "
import h5py, numpy as np
a = h5py.File('$T/f32.h5','r')['patch'][:]; b = h5py.File('$T/g1.h5','r')['patch'][:]
assert np.array_equal(a.astype(np.float16).view(np.uint16), b.view(np.uint16)), 'half differs from numpy RNE'
"
else
  skip features_reference "python3 torch/h5py/numpy missing"
fi
check render_with_features "$I2PMAE" render --input "$T/d.h5" --sample 5 --features "$T/g1.h5" -o "$T/r.png"
check render_png_two_columns $PY -c "
import struct
b = open('$T/r.png','rb').read(32)
assert struct.unpack('>II', b[16:24]) == (2*224+4, 3*224+2*4)
"
"$I2PMAE" synth --samples 5 --points 128 --seed 2 -o "$T/other.h5" > /dev/null 2>&1
expect_error render_features_of_other_dataset "another dataset\|samples" "$I2PMAE" render --input "$T/other.h5" --sample 0 --features "$T/g1.h5" -o "$T/r2.png"
