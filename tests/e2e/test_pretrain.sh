# test_pretrain.sh -- `i2pmae pretrain` on a tiny network: the loss sequence of 20 steps is the same
# on 1, 2 and 4 ranks for a fixed global batch and micro-batch (tolerance: 1e-4 relative; the sums
# are in double, so they are usually bitwise equal); a run killed with SIGKILL and resumed gives the same later
# losses as an uninterrupted one (exact, same rank count); corrupt checkpoints are skipped; a NaN loss
# stops the run and keeps the last good checkpoint; outputs (loss.csv, loss.png, JSON); bad input.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

train_data 48
need_features_file
P="--config $TINY --data $T/d.h5 --features $T/f.h5 --batch 8 --micro-batch 2"

# ---- rank-count independence: 20 steps on 1, 2 and 4 ranks ----
for np in 1 2 4; do
  check "pretrain_np$np" mpi $np "$I2PMAE" pretrain $P -o "$T/np$np" --steps 20 --checkpoint-every 10
done
losses_equal pretrain_np2_same_losses_as_np1 "$T/np1/loss.csv" "$T/np2/loss.csv" 1e-4
losses_equal pretrain_np4_same_losses_as_np1 "$T/np1/loss.csv" "$T/np4/loss.csv" 1e-4
check pretrain_csv_20_rows sh -c "[ \$(tail -n +2 '$T/np1/loss.csv' | wc -l) = 20 ]"
check pretrain_loss_png sh -c "head -c 4 '$T/np2/loss.png' | grep -q PNG"
check pretrain_checkpoints_kept sh -c "[ -f '$T/np2/ckpt-00000010.h5' ] && [ -f '$T/np2/ckpt-00000020.h5' ]"
mpi 2 "$I2PMAE" pretrain $P -o "$T/json" --steps 4 > "$T/json.out" 2>&1
check pretrain_json_summary sh -c "tail -1 '$T/json.out' | grep -q '^{.*\"command\":\"pretrain\".*\"seconds_allreduce\":.*\"samples_per_s\"'"
check pretrain_progress_line grep -q 'step 4/4 epoch 0 loss .* (3d .*, 2d .*) lr .* samples/s ETA' "$T/json.out"
if have_h5py; then
  check pretrain_checkpoint_fletcher32 $PY -c "
import h5py, sys
f = h5py.File('$T/np2/ckpt-00000020.h5', 'r')
names = []
f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
assert set(names) >= {'params', 'adamw/m', 'adamw/v', 'data_order/perm'}, names
assert all(f[n].fletcher32 for n in names), [n for n in names if not f[n].fletcher32]
assert f.attrs['step'] == 20 and f.attrs['format'] == 'i2pmae-checkpoint'
"
else
  skip pretrain_checkpoint_fletcher32 "python3 h5py missing"
fi

# ---- kill with SIGKILL mid-run, resume: same later losses ----
# 60 steps, killed as soon as step 5 is logged (polled every 20 ms), so the kill lands mid-run even
# when a step takes only a few milliseconds; the test waits until the ranks are gone.
R="--steps 60 --checkpoint-every 4 --keep 2"
check pretrain_uninterrupted mpi 2 "$I2PMAE" pretrain $P -o "$T/ref" $R
$MPIRUN 2 "$I2PMAE" pretrain $P -o "$T/kill" $R > "$T/kill.out" 2>&1 &
mpid=$! # mpirun itself: its children are the two ranks
wait_for_line "$T/kill/loss.csv" 5,
kill_ranks pretrain_killed_mid_run $mpid "$T/kill/loss.csv" 60,
check pretrain_resume mpi 2 "$I2PMAE" pretrain $P -o "$T/kill" $R --resume
losses_equal pretrain_resume_same_losses "$T/ref/loss.csv" "$T/kill/loss.csv" 0
check pretrain_resume_no_partial sh -c "! ls '$T/kill'/ckpt-*.partial 2> /dev/null"
check pretrain_resume_kept_2 sh -c "[ \$(ls '$T/kill'/ckpt-*.h5 | wc -l) = 2 ]"

# ---- a corrupt newest checkpoint is skipped; all corrupt is an error ----
mkdir -p "$T/corrupt"
cp "$T/ref/loss.csv" "$T/corrupt/"
cp "$T/np2/ckpt-00000010.h5" "$T/np2/ckpt-00000020.h5" "$T/corrupt/"
sed -i '/^1[1-9],\|^20,/d' "$T/corrupt/loss.csv"
if have_h5py; then
  corrupt() { $PY -c "
import h5py, sys
f = h5py.File(sys.argv[1], 'r'); off = f['params'].id.get_chunk_info(0).byte_offset; f.close()
b = open(sys.argv[1], 'r+b'); b.seek(off + 13); c = b.read(1); b.seek(off + 13); b.write(bytes([c[0] ^ 0x55])); b.close()
" "$1"; }
  corrupt "$T/corrupt/ckpt-00000020.h5"
  mpi 2 "$I2PMAE" pretrain $P -o "$T/corrupt" --steps 20 --resume > "$T/corrupt.out" 2>&1
  check pretrain_corrupt_skipped grep -q 'skipping .*ckpt-00000020.h5: .*corrupt' "$T/corrupt.out"
  check pretrain_corrupt_resumed_from_older grep -q 'steps 10 -> 20 (resumed)' "$T/corrupt.out"
  losses_equal pretrain_corrupt_same_losses "$T/np2/loss.csv" "$T/corrupt/loss.csv" 1e-4
  mkdir -p "$T/allbad" && cp "$T/np2/ckpt-00000020.h5" "$T/allbad/" && corrupt "$T/allbad/ckpt-00000020.h5"
  expect_error pretrain_all_corrupt "allbad: no valid checkpoint to resume from" \
    $MPIRUN 2 "$I2PMAE" pretrain $P -o "$T/allbad" --steps 30 --resume
else
  skip pretrain_corrupt_skipped "python3 h5py missing"
fi

# ---- NaN loss: clear error, last good checkpoint kept, nothing after it ----
expect_error pretrain_nan_loss "step 7: the loss is not finite.*last good checkpoint: .*ckpt-00000005.h5" \
  env I2PMAE_TEST_NAN_STEP=7 $MPIRUN 2 "$I2PMAE" pretrain $P -o "$T/nan" --steps 20 --checkpoint-every 5
check pretrain_nan_kept_checkpoint sh -c "[ -f '$T/nan/ckpt-00000005.h5' ] && ! ls '$T/nan'/*.partial 2> /dev/null && [ \$(ls '$T/nan'/ckpt-*.h5 | wc -l) = 1 ]"

# ---- gnuplot failing is a warning ----
check pretrain_no_gnuplot_warns env I2PMAE_GNUPLOT=/nonexistent/gnuplot "$I2PMAE" pretrain $P -o "$T/nogp" --steps 2
check pretrain_no_gnuplot_no_png sh -c "[ ! -e '$T/nogp/loss.png' ] && [ -f '$T/nogp/loss.csv' ]"

# ---- bad input ----
"$I2PMAE" synth --samples 48 --points 256 --seed 4 -o "$T/other.h5" > /dev/null 2>&1
make_features "$T/other.h5" "$T/other_f.h5" > /dev/null 2>&1
expect_error pretrain_features_other_dataset "extracted from another dataset" \
  "$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/other_f.h5" -o "$T/bad1" --batch 8
no_file pretrain_features_other_dataset_no_run "$T/bad1/ckpt-00000001.h5"
make_features "$T/d.h5" "$T/f2v.h5" 2 > /dev/null 2>&1
expect_error pretrain_features_other_views "f2v.h5: was extracted with 2 views, this run needs 3" \
  "$I2PMAE" pretrain $P --features "$T/f2v.h5" -o "$T/bad2"
expect_error pretrain_resume_other_config "configuration differs: 'model\.embed_hidden' is \[8,16,32\] in the checkpoint but \[8,16,64\] here" \
  "$I2PMAE" pretrain $P -o "$T/np1" --embed-hidden 8,16,64 --steps 30 --resume
expect_error pretrain_resume_other_batch "configuration differs: 'train\.batch' is 8 in the checkpoint but 16 here" \
  "$I2PMAE" pretrain $P -o "$T/np1" --batch 16 --steps 30 --resume
mkdir -p "$T/empty"
expect_error pretrain_resume_empty_rundir "empty: --resume, but the run directory holds no checkpoint" \
  "$I2PMAE" pretrain $P -o "$T/empty" --resume
expect_error pretrain_rundir_has_run "holds checkpoints of an earlier run.*--resume" \
  "$I2PMAE" pretrain $P -o "$T/np1" --steps 30
expect_error pretrain_batch_not_divisible "batch 6 is not divisible by the 4 data ranks" \
  $MPIRUN 4 "$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" -o "$T/bad3" --batch 6
expect_error pretrain_micro_not_divisible "micro-batch x ranks = 6" \
  $MPIRUN 2 "$I2PMAE" pretrain $P --micro-batch 3 -o "$T/bad4"
touch "$T/afile"
expect_error pretrain_unwritable_rundir "afile/run: cannot create the run directory" \
  $MPIRUN 2 "$I2PMAE" pretrain $P -o "$T/afile/run"
expect_error pretrain_rundir_in_proc "cannot create the run directory" \
  "$I2PMAE" pretrain $P -o /proc/i2pmae-run
expect_error pretrain_missing_features "nothere.h5" \
  "$I2PMAE" pretrain $P --features "$T/nothere.h5" -o "$T/bad5"
expect_error pretrain_too_few_points "the network takes 512" \
  "$I2PMAE" pretrain $P --points 512 --groups 32,16,8 -o "$T/bad6"
