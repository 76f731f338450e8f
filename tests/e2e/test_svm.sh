# test_svm.sh -- `i2pmae svm`: a pre-trained checkpoint and a random-init encoder are evaluated
# (JSON line, per-class table), results are the same on 1 and 2 ranks, --c auto cross-validates,
# --bn-stats data gives the same results on 1, 2 and 3 ranks,
# the accuracy beats chance on the 12 synthetic classes; bad input (corrupt checkpoint, options that
# disagree with the checkpoint, both or neither of --checkpoint / --random-init).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

check synth_train "$I2PMAE" synth --samples 96 --points 128 --seed 5 -o "$T/tr.h5"
check synth_test "$I2PMAE" synth --samples 96 --points 128 --seed 6 -o "$T/te.h5"
check features make_features "$T/tr.h5" "$T/f.h5"
check pretrain_for_svm mpi 2 "$I2PMAE" pretrain --config "$TINY" --data "$T/tr.h5" --features "$T/f.h5" \
  -o "$T/run" --batch 8 --steps 6 --log-every 3
CK="$T/run/ckpt-00000006.h5"
S="--config $TINY --data $T/tr.h5 --test $T/te.h5"

for np in 1 2; do
  mpi $np "$I2PMAE" svm $S --checkpoint "$CK" > "$T/ck$np.out" 2>&1
  check "svm_checkpoint_np$np" grep -q '^{.*"command":"svm".*"encoder":"checkpoint".*"accuracy":' "$T/ck$np.out"
done
acc() { tail -1 "$1" | sed 's/.*"accuracy":\([0-9.e-]*\).*/\1/'; }
a1=$(acc "$T/ck1.out"); a2=$(acc "$T/ck2.out")
if [ -n "$a1" ] && [ "$a1" = "$a2" ]; then pass svm_same_on_1_and_2_ranks; else fail svm_same_on_1_and_2_ranks "$a1 vs $a2"; fi
check svm_per_class_table grep -q '^11 *annulus *8 ' "$T/ck1.out"
mpi 2 "$I2PMAE" svm $S --random-init > "$T/rnd.out" 2>&1
check svm_random_init grep -q '"encoder":"random-init"' "$T/rnd.out"
ar=$(acc "$T/rnd.out")
# 12 balanced classes, 96 test samples: chance is 1/12 (8 right, sd 2.7); a working encoder + SVM
# gets at least 15 right (0.156)
if awk -v a="$a1" -v b="$ar" 'BEGIN { exit !(a > 0.15 && b > 0.15) }'; then pass svm_beats_chance
else fail svm_beats_chance "accuracies $a1 (checkpoint), $ar (random-init), chance 0.083"; fi
"$I2PMAE" svm $S --random-init --c auto --folds 3 > "$T/auto.out" 2>&1
check svm_c_auto grep -q '"c_selection":"cross-validation".*"cv_accuracy"' "$T/auto.out"
check svm_c_auto_lists_grid grep -q 'C = 0.0093 .*3-fold cross-validation accuracy' "$T/auto.out"

# --bn-stats data: the encoder's BatchNorm statistics re-estimated on the training split in global
# batches of --batch (the last one takes a remainder of 2 or more; one sample left over is left out),
# whatever the number of ranks: the same features, so the same cross-validation accuracies and test
# accuracy on 1, 2 and 3 ranks (3 batches of 40, 40 and 16 samples; a rank encodes at most 32 of
# the 96 at a time on 3 ranks)
for np in 1 2 3; do
  mpi $np "$I2PMAE" svm $S --checkpoint "$CK" --bn-stats data --batch 40 --c auto --folds 3 > "$T/bn$np.out" 2>&1
done
check svm_bn_stats_batches grep -q 're-estimated on 96 of the 96 training samples, 3 batches of 40' "$T/bn1.out"
check svm_bn_stats_json grep -q '"bn_stats":"data"' "$T/bn2.out"
cvs() { grep -o 'cross-validation accuracy.*' "$1"; acc "$1"; }
if [ -n "$(acc "$T/bn1.out")" ] && [ "$(cvs "$T/bn1.out")" = "$(cvs "$T/bn2.out")" ] && \
   [ "$(cvs "$T/bn1.out")" = "$(cvs "$T/bn3.out")" ]; then pass svm_bn_stats_same_on_1_2_3_ranks
else fail svm_bn_stats_same_on_1_2_3_ranks "$(cvs "$T/bn1.out" | tr '\n' ' ') vs $(cvs "$T/bn2.out" | tr '\n' ' ') vs $(cvs "$T/bn3.out" | tr '\n' ' ')"; fi
mpi 2 "$I2PMAE" svm $S --random-init --bn-stats data --batch 19 > "$T/bn19.out" 2>&1
check svm_bn_stats_remainder_of_one grep -q 're-estimated on 95 of the 96 training samples, 5 batches of 19' "$T/bn19.out"

# ---- bad input ----
if have_h5py; then
  cp "$CK" "$T/bad.h5"
  $PY -c "
import h5py, sys
f = h5py.File(sys.argv[1], 'r'); off = f['params'].id.get_chunk_info(0).byte_offset; f.close()
b = open(sys.argv[1], 'r+b'); b.seek(off + 9); c = b.read(1); b.seek(off + 9); b.write(bytes([c[0] ^ 0x21])); b.close()
" "$T/bad.h5"
  expect_error svm_corrupt_checkpoint "bad.h5: checkpoint is corrupt: /params" \
    $MPIRUN 2 "$I2PMAE" svm $S --checkpoint "$T/bad.h5"
else
  skip svm_corrupt_checkpoint "python3 h5py missing"
fi
expect_error svm_checkpoint_other_config "configuration differs: 'dims' is \[12,24,48\] there but 16,32,64 here" \
  "$I2PMAE" svm $S --checkpoint "$CK" --dims 16,32,64
expect_error svm_both_encoders "exactly one of --checkpoint FILE and --random-init" \
  "$I2PMAE" svm $S --checkpoint "$CK" --random-init
expect_error svm_no_encoder "exactly one of --checkpoint FILE and --random-init" "$I2PMAE" svm $S
expect_error svm_missing_checkpoint "nothere.h5" "$I2PMAE" svm $S --checkpoint "$T/nothere.h5"
expect_error svm_not_a_checkpoint "f.h5: not an i2pmae checkpoint" "$I2PMAE" svm $S --checkpoint "$T/f.h5"
expect_error svm_bad_c "--c -1: must be a positive number or 'auto'" "$I2PMAE" svm $S --random-init --c -1
expect_error svm_bad_bn_stats "--bn-stats running: must be checkpoint or data" \
  "$I2PMAE" svm $S --random-init --bn-stats running
"$I2PMAE" synth --samples 1 --points 128 --seed 5 -o "$T/one.h5" > /dev/null 2>&1
expect_error svm_bn_stats_one_training_cloud "one.h5: --bn-stats data needs batches of at least 2 training samples (1 samples, --batch 32)" \
  "$I2PMAE" svm --config "$TINY" --data "$T/one.h5" --test "$T/te.h5" --random-init --bn-stats data
expect_error svm_bn_stats_batch_of_one "--bn-stats data: --batch 1, BatchNorm statistics need at least 2 samples" \
  "$I2PMAE" svm $S --random-init --bn-stats data --batch 1
expect_error svm_too_few_points "samples have 128 points, the encoder takes 256" \
  "$I2PMAE" svm $S --random-init --points 256
