# test_bad_input.sh -- every bad input of issue 2 gives one line "i2pmae: error: <file>: <what>",
# a non-zero exit on every rank (also under mpirun -np 2 when only one rank meets the problem; no
# hang) and no file under the final name.
. "$(dirname "$0")/../lib.sh"

if ! have_h5py; then skip bad_input "python3 h5py/numpy missing"; exit 0; fi
B=$I2PMAE
O=$T/out.h5
$PY - "$T" <<'PYEOF' || { fail bad_input_fixtures "python failed"; exit 1; }
import os, sys, h5py, numpy as np
t = sys.argv[1]
def h5(name, **ds):
    with h5py.File(os.path.join(t, name), "w") as f:
        for k, v in ds.items():
            f[k] = v
        return f
pts = np.random.default_rng(0).normal(size=(8, 16, 3)).astype(np.float32)
lab = np.arange(8, dtype=np.int32) % 3
h5("nopoints.h5", label=lab)
h5("nolabel.h5", data=pts)
h5("badshape.h5", data=pts[:, :, :2].copy(), label=lab)
h5("badlabelrows.h5", data=pts, label=lab[:5])
h5("floatlabel.h5", data=pts, label=lab.astype(np.float32))
nan = pts.copy(); nan[6, 3, 1] = np.nan          # sample 6: in rank 1's block on 2 ranks
h5("nan.h5", data=nan, label=lab)
inf = pts.copy(); inf[1, 0, 0] = np.inf
h5("inf.h5", data=inf, label=lab)
h5("zeropoints.h5", data=np.zeros((8, 0, 3), np.float32), label=lab)
neg = lab.copy(); neg[2] = -1
h5("neglabel.h5", data=pts, label=neg)
with h5py.File(os.path.join(t, "canon_range.h5"), "w") as f:   # n_classes 3, a label 5 at sample 7
    l = lab.copy(); l[7] = 5
    f["points"] = pts; f["label"] = l; f.attrs["n_classes"] = 3
open(os.path.join(t, "text.h5"), "w").write("not hdf5\n")
# ModelNet40 directory whose labels exceed shape_names.txt
mn = os.path.join(t, "mn"); os.makedirs(mn)
open(os.path.join(mn, "shape_names.txt"), "w").write("a\nb\nc\n")
with h5py.File(os.path.join(mn, "ply_data_train0.h5"), "w") as f:
    f["data"] = pts; f["label"] = (np.arange(8) % 5).astype(np.uint8).reshape(8, 1)
# ShapeNet-55 with one malformed .npy per case, at list position 3 (rank 1's block on 2 ranks)
def shapenet(name, bad_bytes):
    d = os.path.join(t, name); os.makedirs(os.path.join(d, "shapenet_pc"))
    names = [f"0269{i}-m{i}.npy" for i in range(4)]
    for i, n in enumerate(names):
        p = os.path.join(d, "shapenet_pc", n)
        if i == 3: open(p, "wb").write(bad_bytes)
        else: np.save(p, np.ones((20, 3), np.float32) * i + np.arange(60, dtype=np.float32).reshape(20, 3))
    open(os.path.join(d, "train.txt"), "w").write("\n".join(names) + "\n")
    return names[3]
shapenet("sn_magic", b"PK\x03\x04 not numpy")
import io
b = io.BytesIO(); np.save(b, np.ones((20, 2), np.float32)); shapenet("sn_shape", b.getvalue())
b = io.BytesIO(); np.save(b, np.ones((20, 3), np.float32)); shapenet("sn_trunc", b.getvalue()[:-17])
b = io.BytesIO(); np.save(b, np.ones((20, 3), np.float32)); shapenet("sn_count", b.getvalue().replace(b"(20, 3)", b"(19, 3)"))
b = io.BytesIO(); np.save(b, np.zeros((0, 3), np.float32)); shapenet("sn_zero", b.getvalue())
def off(name, text):
    d = os.path.join(t, name, "cls", "train"); os.makedirs(d)
    open(os.path.join(d, "a.off"), "w").write("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
    open(os.path.join(d, "b.off"), "w").write(text)
off("off_header", "PLY\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
off("off_index", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n")
off("off_trunc", "OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")
off("off_vertex", "OFF\n3 1 0\n0 0 0\n1 zero 0\n0 1 0\n3 0 1 2\n")
off("off_flat", "OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n")
PYEOF

MPI2="mpirun -np 2 --oversubscribe --bind-to none"
bad() { # name pattern i2pmae-args...: serially and under mpirun -np 2, each leaving no output file
  bad_name=$1; bad_pat=$2; shift 2
  expect_error "$bad_name" "$bad_pat" "$B" "$@"; no_file "${bad_name}_no_output" "$O"
  expect_error "${bad_name}_np2" "$bad_pat" $MPI2 "$B" "$@"; no_file "${bad_name}_np2_no_output" "$O"
}
bad1() { # the same, serial only: for checks every rank makes identically on the same metadata
  bad_name=$1; bad_pat=$2; shift 2
  expect_error "$bad_name" "$bad_pat" "$B" "$@"; no_file "${bad_name}_no_output" "$O"
}
SO="convert --format scanobjectnn -o $O --input"
bad missing_file "missing.h5: No such file" $SO "$T/missing.h5"
bad not_hdf5 "text.h5: not an HDF5 file" $SO "$T/text.h5"
bad1 no_points "nopoints.h5: no /points dataset" $SO "$T/nopoints.h5"
bad1 no_label "nolabel.h5: dataset /label is missing" $SO "$T/nolabel.h5"
bad1 wrong_shape "badshape.h5: /data has shape (8,16,2), expected (0,0,3)" $SO "$T/badshape.h5"
bad1 wrong_label_rows "badlabelrows.h5: /label has shape (5), expected (8)" $SO "$T/badlabelrows.h5"
bad1 float_labels "floatlabel.h5: /label is not an integer dataset" $SO "$T/floatlabel.h5"
bad nan_coordinate "nan.h5: /data: sample 6 has a NaN or Inf coordinate" $SO "$T/nan.h5" --batch 1
bad1 inf_coordinate "inf.h5: /data: sample 1 has a NaN or Inf coordinate" $SO "$T/inf.h5"
bad1 zero_points "zeropoints.h5: /data: clouds have zero points" $SO "$T/zeropoints.h5"
bad1 negative_label "neglabel.h5: /label: sample 2 has label -1" $SO "$T/neglabel.h5"
bad label_over_n_classes "canon_range.h5: /label: sample 7 has label 5, outside \[0, 3)" $SO "$T/canon_range.h5" --batch 1
bad1 label_over_shape_names "labels go up to 4 but shape_names.txt lists 3 classes" \
  convert --format modelnet40 --input "$T/mn" -o "$O"
SN="convert --format shapenet55 --batch 1 -o $O --input"
bad npy_bad_magic "m3.npy: not a .npy file (bad magic)" $SN "$T/sn_magic"
bad1 npy_bad_shape "m3.npy: .npy shape (20, 2) is not (P, 3)" $SN "$T/sn_shape"
bad npy_truncated "m3.npy: .npy data truncated" $SN "$T/sn_trunc"
bad1 npy_point_count "m3.npy: has 19 points, the first file has 20" $SN "$T/sn_count"
bad1 npy_zero_points "m3.npy: has 0 points" $SN "$T/sn_zero"
OF="convert --format off --points 8 -o $O --input"
bad1 off_bad_header "b.off: line 1: no OFF header" $OF "$T/off_header"
bad off_bad_index "b.off: line 6: vertex index 7 outside \[0, 3)" $OF "$T/off_index"
bad1 off_truncated "b.off: file ends after 1 of 2 faces" $OF "$T/off_trunc"
bad1 off_bad_vertex "b.off: line 4: malformed vertex" $OF "$T/off_vertex"
bad1 off_zero_area "b.off: mesh has zero surface area" $OF "$T/off_flat"
bad output_dir_missing "nodir/x.h5: directory .*nodir does not exist" \
  synth --samples 4 --points 8 -o "$T/nodir/x.h5"
touch "$T/afile"
expect_error output_parent_is_file "afile/x.h5: .*afile is not a directory" "$B" synth --samples 4 --points 8 -o "$T/afile/x.h5"
# Root writes anywhere, so the unwritable directory is tried as user nobody (setpriv).
RO=$(mktemp -d /tmp/i2pmae-ro.XXXXXX); chmod 555 "$RO"
if [ "$(id -u)" != 0 ]; then
  expect_error output_dir_unwritable "x.h5: directory .* is not writable" "$B" synth --samples 4 --points 8 -o "$RO/x.h5"
elif command -v setpriv > /dev/null && setpriv --reuid=65534 --regid=65534 --clear-groups "$B" --version > /dev/null 2>&1; then
  expect_error output_dir_unwritable "x.h5: directory .* is not writable" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$B" synth --samples 4 --points 8 -o "$RO/x.h5"
else
  skip output_dir_unwritable "running as root and cannot run the binary as nobody"
fi
no_file output_dir_unwritable_no_output "$RO/x.h5"
rmdir "$RO"
"$B" synth --samples 4 --points 8 -o "$O" > /dev/null 2>&1
cp "$O" "$T/orig.h5"
expect_error existing_output "out.h5: exists (use --force to replace it)" "$B" synth --samples 4 --points 9 -o "$O"
check existing_output_untouched cmp "$O" "$T/orig.h5"
expect_error existing_output_np2 "out.h5: exists (use --force" $MPI2 "$B" synth --samples 4 --points 9 -o "$O"
check existing_output_untouched_np2 cmp "$O" "$T/orig.h5"
rm -f "$O"
expect_error info_missing_file "nothing.h5: No such file" $MPI2 "$B" info "$T/nothing.h5"
expect_error info_not_hdf5 "text.h5: not an HDF5 file" "$B" info "$T/text.h5"
expect_error synth_bad_points "--points 0: must be at least 1" "$B" synth --samples 4 --points 0 -o "$O"
no_file synth_bad_points_no_output "$O"
