# test_partseg_data.sh -- the part-segmentation data: `synth --parts` (checked with h5py, same bytes on
# 1 and 2 ranks; plain synth has no /seg) and `convert --format shapenetpart` on a fixture in the real
# layout written by tests/ref/shapenetpart_ref.py (checked against the fixture, same bytes on 1 and 2
# ranks; bad inputs: a part of another category, a listed file missing, a short row, an empty shape).
. "$(dirname "$0")/../lib.sh"
if ! have_h5py; then skip partseg_data "python3 h5py/numpy missing"; exit 0; fi
REF="$ROOT/tests/ref/shapenetpart_ref.py"
SPN=shapenetcore_partanno_segmentation_benchmark_v0_normal

# ---- synth --parts ----
check synth_parts "$I2PMAE" synth --parts --samples 24 --points 128 --seed 3 -o "$T/tr.h5"
check synth_parts_test "$I2PMAE" synth --parts --samples 12 --points 128 --seed 4 -o "$T/te.h5"
check synth_parts_np2 mpi 2 "$I2PMAE" synth --parts --samples 24 --points 128 --seed 3 --batch 5 -o "$T/tr2.h5"
check synth_parts_np2_identical cmp "$T/tr.h5" "$T/tr2.h5"
check synth_parts_reference $PY "$REF" check-synth "$T/tr.h5"
check synth_plain_has_no_seg "$I2PMAE" synth --samples 12 --points 128 -o "$T/plain.h5"
check synth_plain_no_seg_dataset $PY -c "import h5py,sys; f=h5py.File(sys.argv[1]); sys.exit('seg' in f or 'n_parts' in f.attrs)" "$T/plain.h5"

# ---- convert --format shapenetpart ----
$PY "$REF" make "$T/fx" || fail shapenetpart_fixture "could not build the fixture"
for split in trainval test; do
  check "convert_shapenetpart_$split" "$I2PMAE" convert --format shapenetpart --input "$T/fx/$SPN" --split $split --points 64 -o "$T/sp_$split.h5"
  check "convert_shapenetpart_${split}_reference" $PY "$REF" check "$T/fx" $split "$T/sp_$split.h5" 64
done
check convert_shapenetpart_np2 mpi 2 "$I2PMAE" convert --format shapenetpart --input "$T/fx/$SPN" --split trainval --points 64 --batch 1 -o "$T/sp2.h5"
check convert_shapenetpart_np2_identical cmp "$T/sp_trainval.h5" "$T/sp2.h5"
for k in part missing columns empty; do
  $PY "$REF" bad "$T/bad_$k" $k
done
expect_error shapenetpart_part_of_other_category "a002.txt:6: part 12 is not a part of Airplane (parts 0..3)" \
  "$I2PMAE" convert --format shapenetpart --input "$T/bad_part/$SPN" -o "$T/b.h5"
expect_error shapenetpart_missing_file "a002.txt: listed in .*shuffled_train_file_list.json (entry 3) but missing" \
  "$I2PMAE" convert --format shapenetpart --input "$T/bad_missing/$SPN" -o "$T/b.h5"
expect_error shapenetpart_short_row "a002.txt:8: 6 numbers, expected 7" \
  "$I2PMAE" convert --format shapenetpart --input "$T/bad_columns/$SPN" -o "$T/b.h5"
expect_error shapenetpart_empty_shape "a002.txt: an empty shape" \
  "$I2PMAE" convert --format shapenetpart --input "$T/bad_empty/$SPN" -o "$T/b.h5"
no_file shapenetpart_bad_no_output "$T/b.h5"
expect_error shapenetpart_bad_split "--split all: must be train, val, test or trainval" \
  "$I2PMAE" convert --format shapenetpart --input "$T/fx/$SPN" --split all -o "$T/b.h5"

