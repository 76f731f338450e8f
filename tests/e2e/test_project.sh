# test_project.sh -- the depth projection and point->pixel table against an independent numpy
# implementation (tests/ref/project_ref.py): identical pixel indices, images within 1e-5; plus the
# `render` command (PNG written, errors).
. "$(dirname "$0")/../lib.sh"

"$I2PMAE" synth --samples 24 --points 256 --seed 3 -o "$T/d.h5" > /dev/null 2>&1 || fail synth "could not make test data"
if have_h5py; then
  $PY "$ROOT/tests/ref/make_clouds.py" "$T/odd.h5" 200
  for s in 0 7 13 23; do
    check "render_dump_sample$s" "$I2PMAE" render --input "$T/d.h5" --sample $s -o "$T/r$s.png" --dump "$T/r$s.h5"
    check "projection_matches_numpy_sample$s" $PY "$ROOT/tests/ref/project_ref.py" "$T/d.h5" $s "$T/r$s.h5" 3 224
  done
  for s in 0 1 2 3 4; do  # translated/anisotropic, flat, line, duplicates, one repeated point
    check "render_odd_cloud$s" "$I2PMAE" render --input "$T/odd.h5" --sample $s -o "$T/o$s.png" --dump "$T/o$s.h5"
    check "projection_matches_numpy_odd$s" $PY "$ROOT/tests/ref/project_ref.py" "$T/odd.h5" $s "$T/o$s.h5" 3 224
  done
  check render_dump_small_image "$I2PMAE" render --input "$T/d.h5" --sample 2 --image 64 --views 2 -o "$T/s.png" --dump "$T/s.h5"
  check projection_matches_numpy_small_image $PY "$ROOT/tests/ref/project_ref.py" "$T/d.h5" 2 "$T/s.h5" 2 64
  # a wrong reference must be caught: compare sample 7's arrays against sample 0's cloud
  if $PY "$ROOT/tests/ref/project_ref.py" "$T/d.h5" 0 "$T/r7.h5" 3 224 > /dev/null 2>&1; then
    fail projection_reference_can_fail "sample 0 matched sample 7's projection"
  else
    pass projection_reference_can_fail
  fi
  check render_png_size $PY -c "
import struct,sys
b=open('$T/r0.png','rb').read(32)
assert b[:8]==b'\x89PNG\r\n\x1a\n', 'not a PNG'
w,h=struct.unpack('>II', b[16:24])
assert (w,h)==(224, 3*224+2*4), (w,h)
"
else
  skip projection_matches_numpy "python3 h5py/numpy missing"
fi

check render_under_mpi_np2 mpi 2 "$I2PMAE" render --input "$T/d.h5" --sample 1 -o "$T/m.png"
expect_error render_missing_input "nope.h5" "$I2PMAE" render --input "$T/nope.h5" --sample 0 -o "$T/e1.png"
no_file render_missing_input_no_png "$T/e1.png"
expect_error render_sample_out_of_range "sample 24" mpirun -np 2 --oversubscribe --bind-to none "$I2PMAE" render --input "$T/d.h5" --sample 24 -o "$T/e2.png"
no_file render_sample_out_of_range_no_png "$T/e2.png"
expect_error render_unwritable_output "cannot create" mpirun -np 2 --oversubscribe --bind-to none "$I2PMAE" render --input "$T/d.h5" --sample 0 -o "$T/no/such/dir/x.png"
expect_error render_bad_views "views 0" "$I2PMAE" render --input "$T/d.h5" --sample 0 --views 0 -o "$T/e3.png"
echo "garbage" > "$T/corrupt.h5"
expect_error render_corrupt_input "not an HDF5 file" mpirun -np 2 --oversubscribe --bind-to none "$I2PMAE" render --input "$T/corrupt.h5" --sample 0 -o "$T/e4.png"
no_file render_corrupt_input_no_png "$T/e4.png"
