# test_off_variants.sh -- the OFF variants common tools write (COFF, NOFF, CNOFF, STOFF, nOFF with
# dimension 3, colours after face indices) are read by `convert --format off` and give the same
# points as the plain OFF of the same mesh; 4-D variants, nOFF of another dimension, binary OFF
# and unknown keywords are refused with an error naming the variant and the file.
. "$(dirname "$0")/../lib.sh"

if ! command -v h5diff > /dev/null; then skip off_variants "h5diff (hdf5-tools) missing"; exit 0; fi

# One mesh (a unit square as two triangles and a tilted triangle), written in each variant into
# its own ModelNet40-style tree DIR/ModelNet40/box/train/box_0001.off.
mesh() { # dir, then the file's text on stdin
  mkdir -p "$T/$1/ModelNet40/box/train" "$T/$1/ModelNet40/box/test"
  cat > "$T/$1/ModelNet40/box/train/box_0001.off"
}
# the square's vertices and faces, as every variant without per-vertex extras writes them
SQUARE='0 0 0
1 0 0
1 1 0
0 1 0
0.5 0.5 1
3 0 1 2
3 0 2 3
3 0 1 4'
# the faces alone, for the variants with per-vertex extras
FACES='3 0 1 2
3 0 2 3
3 0 1 4'
mesh plain <<EOM
OFF
5 3 0
$SQUARE
EOM
mesh coff_rgba <<EOM
COFF
5 3 0
0 0 0 255 0 0 255
1 0 0 0 255 0 255
1 1 0 0 0 255 255
0 1 0 10 20 30 255
0.5 0.5 1 1 1 1 255
$FACES
EOM
mesh coff_rgb_float <<'EOM'
COFF
# colours as floats, RGB, and face colours after the indices
5 3 0
0 0 0 1.0 0.0 0.0
1 0 0 0.0 1.0 0.0
1 1 0 0.0 0.0 1.0
0 1 0 0.5 0.5 0.5
0.5 0.5 1 0.2 0.2 0.2
3 0 1 2 255 0 0
3 0 2 3 0 255 0 255
3 0 1 4 0.1 0.2 0.3 1.0
EOM
mesh noff <<EOM
NOFF
5 3 0
0 0 0 0 0 1
1 0 0 0 0 1
1 1 0 0 0 1
0 1 0 0 0 1
0.5 0.5 1 0 0 1
$FACES
EOM
mesh cnoff <<EOM
CNOFF
5 3 0
0 0 0 0 0 1 255 0 0 255
1 0 0 0 0 1 0 255 0 255
1 1 0 0 0 1 0 0 255 255
0 1 0 0 0 1 9 9 9 255
0.5 0.5 1 0 0 1 1 1 1 255
$FACES
EOM
mesh stoff <<EOM
STOFF
5 3 0
0 0 0 0 0
1 0 0 1 0
1 1 0 1 1
0 1 0 0 1
0.5 0.5 1 0.5 0.5
$FACES
EOM
mesh stcnoff <<EOM
STCNOFF
5 3 0
0 0 0 0 0 1 1 0 0 1 0 0
1 0 0 0 0 1 0 1 0 1 1 0
1 1 0 0 0 1 0 0 1 1 1 1
0 1 0 0 0 1 1 1 1 1 0 1
0.5 0.5 1 0 0 1 1 1 1 1 0.5 0.5
$FACES
EOM
mesh noff_dim3 <<EOM
nOFF
3
5 3 0
$SQUARE
EOM
mesh noff_dim3_one_line <<EOM
nOFF 3 5 3 0
$SQUARE
EOM
mesh cnoff_dim3 <<EOM
CNnOFF
3
5 3 0
0 0 0 0 0 1 1 0 0
1 0 0 0 0 1 0 1 0
1 1 0 0 0 1 0 0 1
0 1 0 0 0 1 1 1 1
0.5 0.5 1 0 0 1 1 1 1
$FACES
EOM

conv() { # dir -> dir.h5
  "$I2PMAE" convert --format off --input "$T/$1/ModelNet40" --points 256 --seed 5 -o "$T/$1.h5" > "$T/$1.out" 2>&1
}
if conv plain; then pass off_plain; else fail off_plain "$(tail -2 "$T/plain.out" | tr '\n' ' ')"; fi
for v in coff_rgba coff_rgb_float noff cnoff stoff stcnoff noff_dim3 noff_dim3_one_line cnoff_dim3; do
  if ! conv "$v"; then fail "off_$v" "convert failed: $(tail -2 "$T/$v.out" | tr '\n' ' ')"; continue; fi
  if h5diff "$T/plain.h5" "$T/$v.h5" /points /points > "$T/diff.out" 2>&1; then pass "off_${v}_same_points"
  else fail "off_${v}_same_points" "$(head -3 "$T/diff.out" | tr '\n' ' ')"; fi
done
# the comparison can fail: a different mesh gives other points
mesh other <<'EOM'
OFF
3 1 0
0 0 0
2 0 0
0 2 0
3 0 1 2
EOM
conv other
if h5diff -q "$T/plain.h5" "$T/other.h5" /points /points > /dev/null 2>&1; then
  fail off_compare_detects_difference "another mesh gave the same points"
else pass off_compare_detects_difference; fi

# refusals: the error names the file and the variant
refuse() { # name, pattern, then the file's text on stdin
  mesh "$1"
  expect_error "off_refuse_$1" "$2" "$I2PMAE" convert --format off --input "$T/$1/ModelNet40" --points 8 -o "$T/$1.h5"
  no_file "off_refuse_$1_no_output" "$T/$1.h5"
}
refuse four "box_0001.off: line 1: OFF variant '4OFF' has 4-D vertices; only 3-D meshes are read" <<'EOM'
4OFF
3 1 0
0 0 0 1
1 0 0 1
0 1 0 1
3 0 1 2
EOM
refuse four_n "box_0001.off: line 1: OFF variant 'C4nOFF' has 4-D vertices" <<'EOM'
C4nOFF
3
3 1 0
EOM
refuse ndim4 "box_0001.off: line 2: OFF variant 'nOFF' with dimension 4; only dimension 3 is read" <<'EOM'
nOFF
4
3 1 0
0 0 0 0
1 0 0 0
0 1 0 0
3 0 1 2
EOM
refuse ndim2 "box_0001.off: line 1: OFF variant 'NnOFF' with dimension 2" <<'EOM'
NnOFF 2
3 1 0
EOM
refuse ndim_missing "box_0001.off: line 2: malformed dimension after nOFF" <<'EOM'
nOFF
three
EOM
refuse unknown "box_0001.off: line 1: unknown OFF variant 'XOFF'" <<'EOM'
XOFF
3 1 0
0 0 0
1 0 0
0 1 0
3 0 1 2
EOM
refuse twice "box_0001.off: line 1: unknown OFF variant 'CCOFF'" <<'EOM'
CCOFF
3 1 0
EOM
refuse binary "box_0001.off: line 1: binary OFF ('OFF BINARY') is not supported" <<'EOM'
OFF BINARY
EOM
refuse not_off "box_0001.off: line 1: no OFF header" <<'EOM'
ply
format ascii 1.0
EOM
