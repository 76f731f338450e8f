# test_svm_monitor.sh -- the SVM monitor of `i2pmae pretrain` (--svm-every N, docs/pretrain.md) on the
# tiny network (6 steps per epoch): the svm_acc column of loss.csv has a value exactly at the end of
# every 2nd epoch and at the last step, in [0, 1] and equal to a separate `i2pmae svm --c 0.01` of
# that step's checkpoint; the JSON line's svm_acc_last / svm_acc_best / svm_best_epoch agree with
# the column; training is unchanged (loss columns and final parameters bitwise equal to a run without
# the monitor); --resume restores the best from the checkpoint (a planted best is reported) and
# continues the column exactly; an older loss.csv (no column) gets it on resume; INI keys; bad input.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

check synth_pretrain "$I2PMAE" synth --samples 48 --points 256 --seed 3 -o "$T/d.h5"
check synth_svm_train "$I2PMAE" synth --samples 96 --points 128 --seed 5 -o "$T/tr.h5"
check synth_svm_test "$I2PMAE" synth --samples 96 --points 128 --seed 6 -o "$T/te.h5"
check features make_features "$T/d.h5" "$T/f.h5"
[ -f "$T/f.h5" ] || { fail features_missing "no features file; stopping"; exit 0; }
P="--data $T/d.h5 --features $T/f.h5 --batch 8 --micro-batch 4 --checkpoint-every 6 --keep 10"
M="--svm-every 2 --svm-data $T/tr.h5 --svm-test $T/te.h5"
# the monitor's options as INI keys of [pretrain] (the tiny configuration ends in that section)
{ cat "$TINY"; printf 'svm-every = 2\nsvm-data = %s\nsvm-test = %s\nsvm-c = 0.01\n' "$T/tr.h5" "$T/te.h5"; } > "$T/svm.ini"

# ---- 5 epochs (30 steps) with and without the monitor ----
mpi 2 "$I2PMAE" pretrain --config "$T/svm.ini" $P -o "$T/on" --epochs 5 > "$T/on.out" 2>&1
check svm_monitor_run grep -q '^{.*"command":"pretrain"' "$T/on.out"
mpi 2 "$I2PMAE" pretrain --config "$TINY" $P -o "$T/off" --epochs 5 > "$T/off.out" 2>&1
check svm_monitor_off_run grep -q '^{.*"command":"pretrain"' "$T/off.out"
check svm_monitor_header sh -c "head -1 '$T/on/loss.csv' | grep -qx 'step,epoch,loss,loss_3d,loss_2d,lr,samples_per_s,svm_acc'"
check svm_monitor_off_no_column sh -c "head -1 '$T/off/loss.csv' | grep -qx 'step,epoch,loss,loss_3d,loss_2d,lr,samples_per_s'"
check svm_monitor_rows_12_24_30 sh -c "[ \"\$(awk -F, 'NR > 1 && \$8 != \"\" { printf \"%s \", \$1 }' '$T/on/loss.csv')\" = '12 24 30 ' ]"
check svm_monitor_values_in_0_1 awk -F, 'NR > 1 && $8 != "" { n++; if (!($8 >= 0 && $8 <= 1)) exit 1 } END { exit n != 3 }' "$T/on/loss.csv"
check svm_monitor_loss_png sh -c "head -c 4 '$T/on/loss.png' | grep -q PNG"
check svm_monitor_log_line grep -q 'step 24 (epoch 4): linear-SVM test accuracy .*% (C = 0.01; best' "$T/on.out"
# training unchanged: columns 1-6 (step, epoch, losses, lr) byte for byte, and the final parameters
check svm_monitor_same_losses sh -c "[ \"\$(tail -n +2 '$T/on/loss.csv' | cut -d, -f1-6)\" = \"\$(tail -n +2 '$T/off/loss.csv' | cut -d, -f1-6)\" ]"
if have_h5py; then
  check svm_monitor_same_parameters $PY -c "
import h5py, numpy as np
a = h5py.File('$T/on/ckpt-00000030.h5', 'r'); b = h5py.File('$T/off/ckpt-00000030.h5', 'r')
for n in ('params', 'buffers', 'adamw/m', 'adamw/v'):
    assert np.array_equal(a[n][:], b[n][:]), n
assert 'svm_monitor' in a and 'svm_monitor' not in b
"
else
  skip svm_monitor_same_parameters "python3 h5py missing"
fi

# ---- each value equals `i2pmae svm --c 0.01` of that step's checkpoint ----
for s in 12 24 30; do
  mpi 2 "$I2PMAE" svm --config "$TINY" --data "$T/tr.h5" --test "$T/te.h5" --c 0.01 \
    --checkpoint "$T/on/ckpt-000000$s.h5" > "$T/svm$s.out" 2>&1
  a=$(tail -1 "$T/svm$s.out" | sed -n 's/.*"accuracy":\([0-9.e-]*\).*/\1/p')
  b=$(awk -F, -v s=$s '$1 == s { print $8 }' "$T/on/loss.csv")
  if [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; exit !(d < 1e-8 && d > -1e-8) }'
  then pass "svm_monitor_step${s}_equals_svm"; else fail "svm_monitor_step${s}_equals_svm" "svm $a, loss.csv $b"; fi
done

# ---- the JSON line ----
json() { tail -1 "$1" | $PY -c "import json, sys; j = json.load(sys.stdin); print(j['$2'])"; }
best=$(awk -F, 'NR > 1 && $8 != "" && (b == "" || $8 > b) { b = $8; s = $1 } END { print b, s / 6 }' "$T/on/loss.csv")
got="$(json "$T/on.out" svm_acc_best) $(json "$T/on.out" svm_best_epoch)"
if awk -v g="$got" -v w="$best" 'BEGIN { split(g, x, " "); split(w, y, " "); exit !(x[1] - y[1] < 1e-8 && y[1] - x[1] < 1e-8 && x[2] == y[2]) }'
then pass svm_monitor_json_best; else fail svm_monitor_json_best "JSON '$got', loss.csv '$best'"; fi
last=$(awk -F, '$1 == 30 { print $8 }' "$T/on/loss.csv")
check svm_monitor_json_last awk -v a="$(json "$T/on.out" svm_acc_last)" -v b="$last" 'BEGIN { d = a - b; exit !(a != "" && d < 1e-8 && d > -1e-8) }'
check svm_monitor_json_labelled grep -q '"svm_monitor":{"every_epochs":2,"c":0.01,.*"measurements":3' "$T/on.out"
check svm_monitor_off_json_plain sh -c "! tail -1 '$T/off.out' | grep -q svm_"

# ---- resume: 2 epochs, then on to 5: the same column and the same best ----
check svm_monitor_part1 mpi 2 "$I2PMAE" pretrain --config "$T/svm.ini" $P -o "$T/res" --epochs 2
cp -r "$T/res" "$T/plant"
mpi 2 "$I2PMAE" pretrain --config "$T/svm.ini" $P -o "$T/res" --epochs 5 --resume > "$T/res.out" 2>&1
check svm_monitor_resumed grep -q 'steps 12 -> 30 (resumed)' "$T/res.out"
check svm_monitor_resume_same_csv sh -c "[ \"\$(cut -d, -f1-6,8 '$T/res/loss.csv')\" = \"\$(cut -d, -f1-6,8 '$T/on/loss.csv')\" ]"
check svm_monitor_resume_same_best sh -c "[ '$(json "$T/on.out" svm_acc_best) $(json "$T/on.out" svm_best_epoch)' = \
  \"\$(tail -1 '$T/res.out' | $PY -c \"import json, sys; j = json.load(sys.stdin); print(j['svm_acc_best'], j['svm_best_epoch'])\")\" ]"
if have_h5py; then
  # a best planted in the checkpoint (96 of 96 at step 6) is what the resumed run reports
  check svm_monitor_plant $PY -c "
import h5py, numpy as np
f = h5py.File('$T/plant/ckpt-00000012.h5', 'r+')
v = f['svm_monitor'][:]
assert v[0] == 12 and v[2] == 96 and 0 <= v[1] <= 96, v
f['svm_monitor'][:] = np.array([6, 96, 96], dtype=np.int64)
"
  mpi 2 "$I2PMAE" pretrain --config "$T/svm.ini" $P -o "$T/plant" --epochs 3 --resume > "$T/plant.out" 2>&1
  check svm_monitor_resume_restores_best sh -c "tail -1 '$T/plant.out' | grep -q '\"svm_acc_best\":1,\"svm_best_epoch\":1,\"svm_best_step\":6'"
else
  skip svm_monitor_resume_restores_best "python3 h5py missing"
fi

# ---- an older loss.csv (run without the monitor) gets the column on resume ----
check svm_monitor_old_part1 mpi 2 "$I2PMAE" pretrain --config "$TINY" $P -o "$T/old" --epochs 2
check svm_monitor_old_resume mpi 2 "$I2PMAE" pretrain --config "$T/svm.ini" $P -o "$T/old" --epochs 3 --resume
check svm_monitor_old_upgraded sh -c "head -1 '$T/old/loss.csv' | grep -q ',svm_acc\$' && \
  awk -F, 'NF != 8 { exit 1 } NR > 1 && (\$8 != \"\") != (\$1 == 18) { exit 1 }' '$T/old/loss.csv'"

# ---- bad input ----
expect_error svm_monitor_needs_test "--svm-every needs --svm-data and --svm-test" \
  "$I2PMAE" pretrain --config "$TINY" $P -o "$T/bad1" --svm-every 1 --svm-data "$T/tr.h5"
expect_error svm_monitor_bad_c "--svm-c 0: must be positive" \
  "$I2PMAE" pretrain --config "$TINY" $P -o "$T/bad2" --svm-c 0
expect_error svm_monitor_too_few_points "samples have 128 points, the encoder takes 256" \
  "$I2PMAE" pretrain --config "$TINY" $P -o "$T/bad3" --points 256 $M
expect_error svm_monitor_missing_split "nothere.h5" \
  "$I2PMAE" pretrain --config "$TINY" $P -o "$T/bad4" --svm-every 1 --svm-data "$T/tr.h5" --svm-test "$T/nothere.h5"
