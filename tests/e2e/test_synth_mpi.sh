# test_synth_mpi.sh -- `synth` under mpirun -np 1/2/4 gives byte-identical files; the content is
# checked independently with h5py/numpy (tests/ref/check_synth.py).
. "$(dirname "$0")/../lib.sh"

N=203; P=256   # 203 samples: blocks of unequal size on 2 and 4 ranks
for np in 1 2 4; do
  check "synth_np$np" mpi $np "$I2PMAE" synth --samples $N --points $P --seed 7 --batch 16 -o "$T/s$np.h5"
done
check synth_np2_bytes_identical cmp "$T/s1.h5" "$T/s2.h5"
check synth_np4_bytes_identical cmp "$T/s1.h5" "$T/s4.h5"
check synth_np4_h5diff_silent sh -c "[ -z \"\$(h5diff '$T/s1.h5' '$T/s4.h5')\" ]"
check synth_serial_without_mpirun "$I2PMAE" synth --samples $N --points $P --seed 7 -o "$T/s0.h5"
check synth_serial_bytes_identical cmp "$T/s0.h5" "$T/s1.h5"
"$I2PMAE" synth --samples $N --points $P --seed 8 -o "$T/s8.h5" > /dev/null 2>&1
if cmp -s "$T/s1.h5" "$T/s8.h5"; then fail synth_seed_matters "seeds 7 and 8 gave the same file"; else pass synth_seed_matters; fi
check synth_json_summary sh -c "'$I2PMAE' synth --samples 10 --points 8 -o '$T/j.h5' | tail -1 | grep -q '^{\"i2pmae\".*\"command\":\"synth\".*\"samples\":10'"
if have_h5py; then
  check synth_content_reference $PY "$ROOT/tests/ref/check_synth.py" "$T/s4.h5" $N $P
else
  skip synth_content_reference "python3 h5py/numpy missing"
fi
