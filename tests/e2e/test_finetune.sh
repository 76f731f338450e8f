# test_finetune.sh -- `i2pmae finetune` on a tiny network: metrics.csv is bitwise the same on 1 and
# 2 ranks for a fixed batch and micro-batch (4 ranks: losses within 1e-4 relative, accuracies within
# one test sample; the sums are in double, so they are usually bitwise equal too); a run killed with
# SIGKILL and resumed gives the same later metrics and the same best record; outputs (metrics.csv,
# curves.png, confusion.csv, per_class.csv, best.h5, JSON with last and best labelled); --eval-only
# and --vote; bad input (another architecture, test labels outside the train classes, too few
# points, a run directory or a fine-tuning checkpoint as --checkpoint, --checkpoint/--scratch both
# or neither, NaN loss).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

finetune_fixture
FT="--config $TINY --data $T/d.h5 --test $T/te.h5 --batch 8 --micro-batch 2 --warmup-epochs 1 --lr 0.002 --log-every 3"

# metrics_equal NAME A.csv B.csv LOSS_RELTOL ACC_ABSTOL: same rows; loss (col 3) within the
# relative tolerance, accuracies (cols 4-6) within the absolute one.
metrics_equal() {
  awk -F, -v lt="$4" -v at="$5" '
    FNR == 1 { next }
    NR == FNR { a[$1] = $0; na++; next }
    { nb++; if (!($1 in a)) { print "epoch " $1 " missing"; bad = 1; next }
      split(a[$1], x, ",")
      d = $3 - x[3]; if (d < 0) d = -d; m = x[3] < 0 ? -x[3] : x[3]
      if (d > lt * m) { print "epoch " $1 " loss " x[3] " vs " $3; bad = 1 }
      for (i = 4; i <= 6; i++) { d = $i - x[i]; if (d < 0) d = -d; if (d > at) { print "epoch " $1 " col " i ": " x[i] " vs " $i; bad = 1 } } }
    END { if (na == 0 || na != nb) { print "rows: " na " vs " nb; bad = 1 } exit bad }' "$2" "$3" > "$T/cmp.out" 2>&1
  if [ $? = 0 ]; then pass "$1"; else fail "$1" "$(head -3 "$T/cmp.out" | tr '\n' ' ')"; fi
}

# ---- rank-count independence: 4 epochs on 1, 2 and 4 ranks ----
for np in 1 2 4; do
  mpi $np "$I2PMAE" finetune $FT --checkpoint "$PRE" -o "$T/np$np" --epochs 4 > "$T/np$np.out" 2>&1
  check "finetune_np$np" grep -q '"command":"finetune"' "$T/np$np.out"
done
check finetune_np2_metrics_bitwise_np1 cmp "$T/np1/metrics.csv" "$T/np2/metrics.csv"
metrics_equal finetune_np4_metrics_close_np1 "$T/np1/metrics.csv" "$T/np4/metrics.csv" 1e-4 0.0417
check finetune_np2_best_same sh -c "[ '$(json_field "$T/np1.out" test_acc_best)' = '$(json_field "$T/np2.out" test_acc_best)' ] && [ '$(json_field "$T/np1.out" best_epoch)' = '$(json_field "$T/np2.out" best_epoch)' ]"
check finetune_metrics_4_rows sh -c "[ \$(tail -n +2 '$T/np1/metrics.csv' | wc -l) = 4 ] && head -1 '$T/np1/metrics.csv' | grep -qx 'epoch,lr,train_loss,train_acc,test_acc,mean_class_acc'"
check finetune_outputs sh -c "cd '$T/np2' && [ -f best.h5 ] && head -c 4 curves.png | grep -q PNG && [ \$(wc -l < confusion.csv) = 13 ] && head -1 per_class.csv | grep -q '^id,class,samples,correct,accuracy'"
check finetune_keeps_2_checkpoints sh -c "[ \$(ls '$T/np2'/ckpt-*.h5 | wc -l) = 2 ] && [ -f '$T/np2/ckpt-00000024.h5' ]"
check finetune_json_labels grep -q '"test_acc_last":.*"last_epoch":3,.*"test_acc_best":.*"best_epoch":' "$T/np2.out"
check finetune_per_class_table grep -q '^id  *class  *test  *correct  *accuracy' "$T/np2.out"
check finetune_epoch_line grep -q 'epoch 3/4 lr .* train loss .* acc .*% | test acc .*% mean class .*% | best .*% (epoch [0-3])' "$T/np2.out"
if have_h5py; then
  check finetune_checkpoint_fletcher32_best_record $PY -c "
import h5py
f = h5py.File('$T/np2/ckpt-00000024.h5', 'r')
names = []
f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert set(names) >= {'params', 'buffers', 'adamw/m', 'adamw/v', 'best/confusion', 'best/epoch'}, names
assert all(f[n].fletcher32 for n in names)
assert f['best/confusion'].shape == (144,) and f['best/confusion'][:].sum() == 24
assert f.attrs['epoch'] == 4 and f.attrs['step'] == 24
b = h5py.File('$T/np2/best.h5', 'r')
assert 'params' in b and 'adamw/m' not in b and b['best/epoch'][0] == b.attrs['epoch'] - 1
"
else
  skip finetune_checkpoint_fletcher32_best_record "python3 h5py missing"
fi

# ---- --eval-only and --vote ----
mpi 2 "$I2PMAE" finetune --eval-only --checkpoint "$T/np2/best.h5" --test "$T/te.h5" > "$T/ev.out" 2>&1
check finetune_eval_only_json grep -q '"mode":"eval".*"test_acc":' "$T/ev.out"
check finetune_eval_only_equals_best sh -c "[ '$(json_field "$T/ev.out" test_acc)' = '$(json_field "$T/np2.out" test_acc_best)' ]"
"$I2PMAE" finetune --eval-only --checkpoint "$T/np2/best.h5" --test "$T/te.h5" --vote --vote-views 2 \
  --vote-repeats 3 > "$T/vote.out" 2>&1
check finetune_vote_json grep -q '"vote_views":2,"vote_repeats":3,.*"vote_acc_mean":.*"vote_acc_std":.*"vote_acc_max":' "$T/vote.out"
check finetune_vote_line grep -q 'voting over 3 repetitions of 2 views: mean .*%, std .*%, max .*%' "$T/vote.out"
mpi 2 "$I2PMAE" finetune --eval-only --checkpoint "$T/np2/best.h5" --test "$T/te.h5" --vote --vote-views 2 \
  --vote-repeats 3 > "$T/vote2.out" 2>&1
check finetune_vote_same_on_2_ranks sh -c "[ '$(json_field "$T/vote.out" vote_acc_mean)' = '$(json_field "$T/vote2.out" vote_acc_mean)' ] && [ -n '$(json_field "$T/vote.out" vote_acc_mean)' ]"

# ---- kill with SIGKILL mid-run, resume: same later metrics, same best record ----
R="--epochs 10 --keep 2"
mpi 2 "$I2PMAE" finetune $FT --checkpoint "$PRE" -o "$T/ref" $R > "$T/ref.out" 2>&1
check finetune_uninterrupted grep -q '"end_epoch":10' "$T/ref.out"
$MPIRUN 2 "$I2PMAE" finetune $FT --checkpoint "$PRE" -o "$T/kill" $R > "$T/kill.out" 2>&1 &
mpid=$!
wait_for_line "$T/kill/metrics.csv" 2,
sleep 0.0$(( $(od -An -N1 -tu1 /dev/urandom) % 10 )) # a random step of the next epoch (0-90 ms: an idle machine runs
# the 8 remaining tiny epochs in well under a second)
kill_ranks finetune_killed_mid_run $mpid "$T/kill/metrics.csv" 9,
mpi 2 "$I2PMAE" finetune $FT --checkpoint "$PRE" -o "$T/kill" $R --resume > "$T/resume.out" 2>&1
check finetune_resumed grep -q '"resumed":true' "$T/resume.out"
check finetune_resume_same_metrics cmp "$T/ref/metrics.csv" "$T/kill/metrics.csv"
for k in test_acc_best mean_class_acc_best best_epoch test_acc_last train_loss; do
  check "finetune_resume_same_$k" sh -c "[ '$(json_field "$T/ref.out" $k)' = '$(json_field "$T/resume.out" $k)' ] && [ -n '$(json_field "$T/ref.out" $k)' ]"
done
check finetune_resume_no_partial sh -c "! ls '$T/kill'/*.partial 2> /dev/null"
# a resume of a complete run (a requeued job) finishes its outputs and succeeds (issue 18, 11;
# test_reliability.sh finetune_resume_complete_*); one beyond --epochs is an error
check finetune_resume_complete "$I2PMAE" finetune $FT --checkpoint "$PRE" -o "$T/kill" $R --resume
expect_error finetune_resume_beyond_epochs "the run is complete (epoch 10 of 8); raise --epochs" \
  "$I2PMAE" finetune $FT --checkpoint "$PRE" -o "$T/kill" $R --epochs 8 --sched-epochs 10 --resume
expect_error finetune_resume_other_config "configuration differs: 'train\.sched_epochs' is 10 in the checkpoint but 12 here" \
  "$I2PMAE" finetune $FT --checkpoint "$PRE" -o "$T/kill" --epochs 12 --lr 0.003 --resume

# ---- NaN loss: clear error, last good checkpoint kept ----
expect_error finetune_nan_loss "step 9 (epoch 1): the loss is not finite.*last good checkpoint: .*ckpt-00000006.h5" \
  env I2PMAE_TEST_NAN_STEP=9 $MPIRUN 2 "$I2PMAE" finetune $FT --scratch -o "$T/nan" --epochs 4
check finetune_nan_kept_checkpoint sh -c "[ -f '$T/nan/ckpt-00000006.h5' ] && ! ls '$T/nan'/*.partial 2> /dev/null && [ \$(ls '$T/nan'/ckpt-*.h5 | wc -l) = 1 ] && [ \$(tail -n +2 '$T/nan/metrics.csv' | wc -l) = 1 ]"

# ---- scratch, ScanObjectNN protocol, no gnuplot ----
check finetune_scanobjectnn_scratch env I2PMAE_GNUPLOT=/nonexistent/gnuplot "$I2PMAE" finetune $FT --scratch \
  --protocol scanobjectnn --points 128 -o "$T/scan" --epochs 2
check finetune_no_gnuplot_no_png sh -c "[ ! -e '$T/scan/curves.png' ] && [ -f '$T/scan/metrics.csv' ]"

# ---- bad input ----
expect_error finetune_other_architecture "tensor '[^']*' has shape .*the checkpoint's network: dims 12,24,48" \
  "$I2PMAE" finetune $FT --dims 16,24,48 --checkpoint "$PRE" -o "$T/bad1" --epochs 1
expect_error finetune_rundir_as_checkpoint "pre: is a directory (a run directory?); --checkpoint takes a pre-training checkpoint file, e.g. .*ckpt-00000002.h5" \
  "$I2PMAE" finetune $FT --checkpoint "$T/pre" -o "$T/bad2" --epochs 1
expect_error finetune_finetune_ckpt_as_checkpoint "is a fine-tuning checkpoint" \
  "$I2PMAE" finetune $FT --checkpoint "$T/np1/best.h5" -o "$T/bad3" --epochs 1
# `info` says what a checkpoint is (the same test as the refusal above: ckpt_kind)
"$I2PMAE" info "$T/np1/best.h5" > "$T/info_ft.out" 2>&1
check info_finetune_checkpoint_kind sh -c "grep -q '^checkpoint: fine-tuning, step [0-9]*, epoch [0-9]*; taken by finetune --eval-only' '$T/info_ft.out' &&
  [ '$(json_field "$T/info_ft.out" checkpoint_kind)' = '\"fine-tuning\"' ]"
expect_error finetune_checkpoint_and_scratch "give exactly one of --checkpoint PRETRAIN.h5" \
  "$I2PMAE" finetune $FT --checkpoint "$PRE" --scratch -o "$T/bad4"
expect_error finetune_neither "give exactly one of --checkpoint PRETRAIN.h5" \
  "$I2PMAE" finetune $FT -o "$T/bad5"
expect_error finetune_train_too_few_points "d.h5: samples have 256 points, the network takes 512" \
  "$I2PMAE" finetune $FT --points 512 --scratch -o "$T/bad6"
"$I2PMAE" synth --samples 8 --points 100 --seed 5 -o "$T/te100.h5" > /dev/null 2>&1
expect_error finetune_test_too_few_points "te100.h5: samples have 100 points, the network takes 128" \
  $MPIRUN 2 "$I2PMAE" finetune $FT --test "$T/te100.h5" --scratch -o "$T/bad7"
if have_h5py; then
  $PY -c "
import h5py, numpy as np
f = h5py.File('$T/te13.h5', 'w')
f['data'] = np.random.RandomState(0).uniform(-1, 1, (6, 256, 3)).astype(np.float32)
f['label'] = np.array([0, 1, 2, 13, 4, 5], np.int64)
"
  expect_error finetune_test_labels_outside "te13.h5: labels up to 13, outside the 12 classes of the training data .*d.h5" \
    $MPIRUN 2 "$I2PMAE" finetune $FT --test "$T/te13.h5" --scratch -o "$T/bad8"
else
  skip finetune_test_labels_outside "python3 h5py missing"
fi
expect_error finetune_eval_only_pretrain_ckpt "is a pre-training checkpoint; finetune --eval-only takes a fine-tuning one" \
  "$I2PMAE" finetune --eval-only --checkpoint "$PRE" --test "$T/te.h5"
expect_error finetune_vote_without_eval_only "--vote goes with --eval-only" \
  "$I2PMAE" finetune $FT --scratch --vote -o "$T/bad9"
expect_error finetune_bad_protocol "--protocol modelnet: must be modelnet40 or scanobjectnn" \
  "$I2PMAE" finetune $FT --scratch --protocol modelnet -o "$T/bad10"
expect_error finetune_rundir_has_run "holds checkpoints of an earlier run.*--resume" \
  "$I2PMAE" finetune $FT --checkpoint "$PRE" -o "$T/np1" --epochs 6
