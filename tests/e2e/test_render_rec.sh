# test_render_rec.sh -- `i2pmae render --checkpoint`: the reconstruction picture of a tiny pre-trained
# network (PNG of three views x three columns, the Chamfer distance printed and in the JSON line,
# 2D-guided masking only with a features file), and a checkpoint whose network does not fit the
# data is refused with a clear error.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

check synth_train "$I2PMAE" synth --samples 16 --points 256 --seed 3 -o "$T/d.h5"
check synth_small "$I2PMAE" synth --samples 4 --points 64 --seed 4 -o "$T/small.h5"
check features make_features "$T/d.h5" "$T/f.h5"
check pretrain_tiny mpi 1 "$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" --batch 8 \
  -o "$T/run" --steps 3
CK="$T/run/ckpt-00000003.h5"
"$I2PMAE" render --checkpoint "$CK" --input "$T/d.h5" --sample 2 -o "$T/rec.png" --image 96 > "$T/r.out" 2>&1
check render_rec_png sh -c "head -c 4 '$T/rec.png' | grep -q PNG"
check render_rec_chamfer_printed grep -q 'render: sample 2: Chamfer distance [0-9.]* (.* visible points, .* masked, random masking)' "$T/r.out"
check render_rec_json sh -c "tail -1 '$T/r.out' | grep -q '\"chamfer\":[0-9.e-]*,\"masking\":\"random\"'"
if have_h5py; then
  check render_rec_size $PY -c "
import struct
b = open('$T/rec.png', 'rb').read(24)
w, h = struct.unpack('>II', b[16:24])
assert (w, h) == (3 * 96 + 8, 3 * 96 + 8), (w, h)
"
fi
"$I2PMAE" render --checkpoint "$CK" --input "$T/d.h5" --features "$T/f.h5" --sample 2 -o "$T/rec2.png" > "$T/r2.out" 2>&1
check render_rec_guided grep -q 'masked, 2D-guided masking' "$T/r2.out"
expect_error render_rec_arch_mismatch "the checkpoint's network takes 128 points per cloud, .*small.h5 has 64: the architecture does not match the data" \
  "$I2PMAE" render --checkpoint "$CK" --input "$T/small.h5" --sample 0 -o "$T/bad.png"
no_file render_rec_mismatch_no_png "$T/bad.png"
expect_error render_rec_bad_sample "--sample 99: .* has samples 0..15" \
  "$I2PMAE" render --checkpoint "$CK" --input "$T/d.h5" --sample 99 -o "$T/bad.png"
expect_error render_rec_not_checkpoint "d.h5" \
  "$I2PMAE" render --checkpoint "$T/d.h5" --input "$T/d.h5" --sample 0 -o "$T/bad.png"
