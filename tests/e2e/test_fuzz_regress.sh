# test_fuzz_regress.sh -- the inputs that fuzzing (tests/fuzz/, `make fuzz`) found to crash a reader,
# fed to the real binary: each must give its one-line error, not a crash or undefined behaviour.
# (The same inputs are replayed through the harnesses by test_fuzz_replay.sh, under SAN=1 with
# UBSan, from tests/fuzz/regress/.)
. "$(dirname "$0")/../lib.sh"

# ---- ShapeNetPart rows: a part id outside int's range (1e20, NaN) was converted to int (UB) ----
SP="$T/sp"
mkdir -p "$SP/train_test_split" "$SP/s00"
i=0
for c in Airplane Bag Cap Car Chair Earphone Guitar Knife Lamp Laptop Motorbike Mug Pistol Rocket Skateboard Table; do
  printf '%s\ts%02d\n' "$c" $i >> "$SP/synsetoffset2category.txt"; i=$((i + 1))
done
printf '["shape_data/s00/m"]' > "$SP/train_test_split/shuffled_test_file_list.json"
sp_case() { # name, pattern, then the rows of the shape on stdin
  cat > "$SP/s00/m.txt"
  expect_error "$1" "$2" "$I2PMAE" convert --format shapenetpart --input "$SP" --split test --points 4 -o "$T/sp.h5"
  no_file "$1_no_output" "$T/sp.h5"
}
printf '0 0 0 0 0 1 0\n1 0 0 0 0 1 1\n' | {
  cat > "$SP/s00/m.txt"
  check shapenetpart_fixture_converts "$I2PMAE" convert --format shapenetpart --input "$SP" --split test --points 4 -o "$T/ok.h5"
}
sp_case shapenetpart_part_1e20 "m.txt:2: part 1e+20 is not a part of Airplane (parts 0..3)" <<'EOM'
0 0 0 0 0 1 0
0 0 0 0 0 1 1e20
EOM
sp_case shapenetpart_part_nan "m.txt:1: part nan is not a part of Airplane" <<'EOM'
0 0 0 0 0 1 nan
EOM
sp_case shapenetpart_part_minus_1e300 "m.txt:1: part -1e+300 is not a part of Airplane" <<'EOM'
0 0 0 0 0 1 -1e300
EOM

# ---- .npy headers: 'descr' at the end of the header (read past it), a row count whose x3
# overflows (a small buffer returned as a huge cloud), a row count beyond long ----
npy_case() { # name, pattern, header dict; a ShapeNet-55 list of one file m.npy with that header
  d="$T/sn_$1"; mkdir -p "$d/shapenet_pc"
  echo "02691156-m.npy" > "$d/train.txt"
  $PY - "$d/shapenet_pc/02691156-m.npy" "$3" <<'PYEOF'
import struct, sys
h = sys.argv[2].encode()
h += b" " * (-(10 + len(h) + 1) % 64) + b"\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + b"\0" * 48)
PYEOF
  expect_error "$1" "$2" "$I2PMAE" convert --format shapenet55 --input "$d" -o "$T/sn.h5"
  no_file "$1_no_output" "$T/sn.h5"
}
npy_case npy_descr_at_end "02691156-m.npy: .npy dtype  is not little-endian float32/float64" \
  "{'fortran_order': False, 'shape': (4, 3), 'descr':"
npy_case npy_rows_times_3_overflow "02691156-m.npy: .npy data truncated (header says (6148914691236517206, 3))" \
  "{'descr': '<f4', 'fortran_order': False, 'shape': (6148914691236517206, 3), }"
npy_case npy_rows_beyond_long "02691156-m.npy: .npy shape (99999999999999999999999, 3) is not (P, 3)" \
  "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999, 3), }"
npy_case npy_rows_beyond_data "02691156-m.npy: .npy data truncated (header says (5, 3))" \
  "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 3), }"

# ---- HDF5 attributes: an array where one value is read (a string or integer attribute of 64 or
# 1000 values) overflowed the reader's scalar on the stack; the files are in tests/fuzz/regress/ ----
R="$ROOT/tests/fuzz/regress/h5_checkpoint"
"$I2PMAE" synth --samples 4 --points 16 -o "$T/d.h5" > /dev/null 2>&1
expect_error h5_attr_string_array "format_is_array.h5: /: attribute 'format' holds 64 values, expected one" \
  "$I2PMAE" svm --checkpoint "$R/format_is_array.h5" --data "$T/d.h5" --test "$T/d.h5"
expect_error h5_attr_long_array "step_is_array.h5: /: attribute 'step' holds 1000 values, expected one" \
  "$I2PMAE" svm --checkpoint "$R/step_is_array.h5" --data "$T/d.h5" --test "$T/d.h5"

# ---- HDF5 datatypes: a corrupt datatype message claiming 2 GB per element made HDF5 allocate a
# conversion buffer of gigabytes before reading /label (20 s and 2 GB for 4 labels; features
# files likewise) ----
expect_error h5_elem_size_2gb "label_type_2gb_per_element.h5: /label: stored elements of 2147483644 bytes (a corrupt datatype?)" \
  "$I2PMAE" convert --format scanobjectnn --input "$ROOT/tests/fuzz/regress/h5_dataset/label_type_2gb_per_element.h5" -o "$T/so.h5"
no_file h5_elem_size_2gb_no_output "$T/so.h5"
