# test_extract_errors.sh -- bad input to `extract`: each gives exactly one error line on rank 0,
# a non-zero exit on every rank (checked per rank through a wrapper), no hang, and nothing under
# the final name (nor a .partial, for errors found before the output is created).
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1
VIT=${I2PMAE_TEST_VIT:-random:tiny}
"$I2PMAE" synth --samples 12 --points 64 --seed 4 -o "$T/d.h5" > /dev/null 2>&1 || fail synth "could not make test data"
echo "this is not HDF5" > "$T/corrupt.h5"
"$I2PMAE" synth --samples 1 --points 8 -o "$T/tiny.h5" > /dev/null 2>&1
if have_h5py; then $PY -c "import h5py; h5py.File('$T/nopoints.h5','w')['x'] = [1]"; fi
# small valid / broken ViT weight files (the ViT's own test generator): good.safetensors is a
# well-formed tiny timm ViT, so its tensors have other shapes than timm-b16 (ViT-B/16) needs
mkdir -p "$T/st" && $PY "$ROOT/tests/ref/make_bad_safetensors.py" "$T/st" > /dev/null 2>&1

# Every rank records its exit status through a wrapper that itself exits 0 (mpirun would otherwise
# kill the other ranks as soon as the first one exits non-zero, hiding their status).
cat > "$T/rank_rc.sh" << 'EOS'
"$@"; echo "${OMPI_COMM_WORLD_RANK:-0} $?" >> "$RC_FILE"; exit 0
EOS
# bad NAME PATTERN NP OUT ARGS...: extract with ARGS under NP ranks must fail cleanly: one error
# line matching PATTERN, every rank non-zero, no hang, nothing under OUT (KEEP_PARTIAL=1: a
# .partial may stay, for errors after the pipeline started, so that a re-run resumes)
bad() {
  name=$1; pat=$2; np=$3; out=$4; shift 4
  export RC_FILE="$T/$name.rc"
  rm -f "$RC_FILE"
  timeout 120 mpirun -np "$np" --oversubscribe --bind-to none -x RC_FILE -x OMP_NUM_THREADS \
    sh "$T/rank_rc.sh" "$I2PMAE" extract "$@" -o "$out" > "$T/$name.out" 2> "$T/$name.err"
  if [ $? = 124 ]; then fail "$name" "hung (timeout)"; return; fi
  lines=$(grep -c '^i2pmae: error:' "$T/$name.err")
  if [ "$lines" != 1 ]; then fail "$name" "$lines error lines (want 1): $(head -c 400 "$T/$name.err" | tr '\n' ' ')"
  elif ! grep '^i2pmae: error:' "$T/$name.err" | grep -q -- "$pat"; then
    fail "$name" "error line does not match '$pat': $(grep '^i2pmae: error:' "$T/$name.err")"
  else pass "$name"; echo "    $(grep '^i2pmae: error:' "$T/$name.err")"; fi
  n=$(awk '$2 != 0' "$RC_FILE" 2> /dev/null | wc -l)
  if [ "$n" = "$np" ]; then pass "${name}_every_rank_nonzero"; else fail "${name}_every_rank_nonzero" "rank/status: $(cat "$RC_FILE" 2> /dev/null | tr '\n' ' ')"; fi
  if [ "${KEEP_PARTIAL:-0}" = 1 ]; then
    if [ -e "$out" ]; then fail "${name}_no_output" "$out exists"; else pass "${name}_no_output"; fi
  else
    no_file "${name}_no_output" "$out"
  fi
}

bad missing_dataset "nope.h5" 2 "$T/o1.h5" --input "$T/nope.h5" --vit "$VIT"
bad corrupt_dataset "not an HDF5 file" 2 "$T/o2.h5" --input "$T/corrupt.h5" --vit "$VIT"
if [ -f "$T/nopoints.h5" ]; then bad not_a_dataset "nopoints.h5" 2 "$T/o3.h5" --input "$T/nopoints.h5" --vit "$VIT"
else skip not_a_dataset "python3 h5py missing (writes nopoints.h5)"; fi
bad weights_do_not_match "good.safetensors" 2 "$T/o4.h5" --input "$T/d.h5" --vit "timm-b16:$T/st/good.safetensors"
bad weights_missing_tensor "missing.safetensors" 2 "$T/o4b.h5" --input "$T/d.h5" --vit "timm:$T/st/missing.safetensors"
bad weights_file_missing "nothere.safetensors" 2 "$T/o5.h5" --input "$T/d.h5" --vit "clip-b16:$T/nothere.safetensors"
bad views_zero "views 0" 2 "$T/o6.h5" --input "$T/d.h5" --vit "$VIT" --views 0
bad views_negative "views -1" 2 "$T/o7.h5" --input "$T/d.h5" --vit "$VIT" --views -1
bad resolution_not_multiple_of_patch "not a multiple of the patch" 2 "$T/o8.h5" --input "$T/d.h5" --vit "$VIT" --image 100
bad world_not_multiple_of_stages "not a multiple of --stages 2" 3 "$T/o9.h5" --input "$T/d.h5" --vit "$VIT" --stages 2
bad more_stages_than_blocks "more stages than" 3 "$T/o10.h5" --input "$T/d.h5" --vit "$VIT" --stages 3
bad unwritable_output "does not exist" 2 "$T/no/such/dir/o11.h5" --input "$T/d.h5" --vit "$VIT"
bad bad_precision "precision" 2 "$T/o12.h5" --input "$T/d.h5" --vit "$VIT" --precision fp8

# a full disk: a 256 KiB tmpfs when mount works (root), else a file-size limit (ulimit -f)
mkdir -p "$T/full"
if mount -t tmpfs -o size=256k tmpfs "$T/full" 2> /dev/null; then
  trap 'umount "$T/full" 2> /dev/null; rm -rf "$T"' EXIT
  "$I2PMAE" synth --samples 200 --points 128 -o "$T/big.h5" > /dev/null 2>&1
  KEEP_PARTIAL=1 bad full_disk_tmpfs "disk full\|No space\|write failed\|cannot create" 2 "$T/full/f.h5" --input "$T/big.h5" --vit "$VIT" --flush 4 --batch 2
  umount "$T/full"
else
  "$I2PMAE" synth --samples 200 --points 128 -o "$T/big.h5" > /dev/null 2>&1
  expect_error full_disk_ulimit "disk full\|write failed\|too large\|cannot create" sh -c "trap '' XFSZ; ulimit -f 256; exec '$I2PMAE' extract --input '$T/big.h5' --vit '$VIT' --flush 4 --batch 2 -o '$T/full/f.h5'"
  if [ -e "$T/full/f.h5" ]; then fail full_disk_ulimit_no_final "final file exists"; else pass full_disk_ulimit_no_final; fi
fi
