# test_convert.sh -- `convert` from fixtures in each real layout (built by tests/ref/convert_ref.py
# with h5py/numpy), outputs compared with numpy computations; `info` on the results.
. "$(dirname "$0")/../lib.sh"

if ! have_h5py; then
  for n in modelnet40 scanobjectnn shapenet55 off; do skip "convert_$n" "python3 h5py/numpy missing"; done
  exit 0
fi
REF="$ROOT/tests/ref/convert_ref.py"
$PY "$REF" make "$T/fx" || { fail convert_fixtures "could not build fixtures"; exit 1; }

conv() { # name format input points output extra...
  n=$1; fmt=$2; in=$3; p=$4; out=$5; shift 5
  check "convert_$n" "$I2PMAE" convert --format "$fmt" --input "$in" --points "$p" -o "$out" "$@"
}
conv modelnet40 modelnet40 "$T/fx/modelnet40_ply_hdf5_2048" 32 "$T/mn.h5"
check convert_modelnet40_reference $PY "$REF" check modelnet40 "$T/fx" "$T/mn.h5" 32
conv scanobjectnn scanobjectnn "$T/fx/scanobjectnn.h5" 0 "$T/so.h5"
check convert_scanobjectnn_reference $PY "$REF" check scanobjectnn "$T/fx" "$T/so.h5" 48
conv shapenet55 shapenet55 "$T/fx/ShapeNet55-34" 40 "$T/sn.h5"
check convert_shapenet55_fps_reference $PY "$REF" check shapenet55 "$T/fx" "$T/sn.h5" 40
conv off off "$T/fx/ModelNet40" 2048 "$T/off.h5" --seed 3
check convert_off_sampling_reference $PY "$REF" check off "$T/fx" "$T/off.h5" 2048
conv off_seed off "$T/fx/ModelNet40" 2048 "$T/off4.h5" --seed 4
if cmp -s "$T/off.h5" "$T/off4.h5"; then fail convert_off_seed_matters "seeds 3 and 4 gave the same file"; else pass convert_off_seed_matters; fi

# MPI: the same bytes on 2 and 4 ranks (blocks of one sample per round)
check convert_shapenet55_np4 mpi 4 "$I2PMAE" convert --format shapenet55 --input "$T/fx/ShapeNet55-34" --points 40 --batch 1 -o "$T/sn4.h5"
check convert_shapenet55_np4_identical cmp "$T/sn.h5" "$T/sn4.h5"
check convert_off_np2 mpi 2 "$I2PMAE" convert --format off --input "$T/fx/ModelNet40" --points 2048 --seed 3 --batch 1 -o "$T/off2.h5"
check convert_off_np2_identical cmp "$T/off.h5" "$T/off2.h5"
check convert_force_replaces "$I2PMAE" convert --format off --input "$T/fx/ModelNet40" --points 16 -o "$T/off.h5" --force
check convert_test_split sh -c "'$I2PMAE' convert --format modelnet40 --input '$T/fx/modelnet40_ply_hdf5_2048' --split test -o '$T/mnt.h5' | tail -1 | grep -q '\"samples\":3,\"points\":64'"

# info on what convert wrote
"$I2PMAE" info "$T/mn.h5" > "$T/info.out" 2>&1
if grep -q '^  /points  *(9,32,3) *float32 *chunks (1,32,3)' "$T/info.out" && grep -q '^labels: 9 samples, 5 classes' "$T/info.out" \
   && grep -q 'airplane' "$T/info.out" && grep -q '@source = modelnet40-h5' "$T/info.out"; then pass info_canonical; else fail info_canonical "$(head -c 600 "$T/info.out")"; fi
$PY - "$T/mn.h5" "$T/info.out" <<'PYEOF' && pass info_histogram_matches_h5py || fail info_histogram_matches_h5py "counts differ"
import sys, h5py, numpy as np
lab = h5py.File(sys.argv[1], "r")["label"][...]
want = np.bincount(lab, minlength=5)
got = [int(l.split()[-1]) for l in open(sys.argv[2]) if l.startswith("  ") and len(l.split()) == 3 and l.split()[0].isdigit()]
sys.exit(0 if list(want) == got else 1)
PYEOF
"$I2PMAE" info "$T/fx/modelnet40_ply_hdf5_2048/ply_data_train0.h5" > "$T/info2.out" 2>&1
if grep -q '/data  *(5,64,3)' "$T/info2.out" && grep -q 'bathtub' "$T/info2.out"; then pass info_modelnet40_release; else fail info_modelnet40_release "$(head -c 600 "$T/info2.out")"; fi
$PY -c "
import h5py, numpy as np
with h5py.File('$T/feat.h5', 'w') as f:
    f['done'] = np.array([1, 0, 1, 1, 0], np.uint8)
    f.create_dataset('feat', data=np.zeros((5, 4), np.float16), chunks=(1, 4), fletcher32=True)
    f.attrs['vit'] = 'random:tiny'
"
"$I2PMAE" info "$T/feat.h5" > "$T/info3.out" 2>&1
if grep -q '^extraction progress: 3/5 samples done' "$T/info3.out" && grep -q 'float16 *chunks (1,4), fletcher32' "$T/info3.out"; then pass info_features_progress; else fail info_features_progress "$(head -c 600 "$T/info3.out")"; fi
