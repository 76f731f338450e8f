# test_reliability.sh -- the promises of docs/reliability.md that no other suite holds: a full disk
# is an error on every rank (no hang, no crash in MPI_Finalize), absurd sizes are refused before
# anything is allocated, hostile paths and inputs are refused. Each case failed before its fix
# (issue 18).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"

# clean_error NAME PATTERN CMD...: CMD exits with status 1 (a crash such as SIGSEGV in
# MPI_Finalize or SIGFPE gives 128+n or mpirun's own status; a hang is killed after 60 s) and
# prints exactly one line starting with "i2pmae: error:" that matches PATTERN.
clean_error() {
  n=$1; pat=$2; shift 2
  timeout 60 "$@" > "$T/ce.out" 2> "$T/ce.err"
  rc=$?
  lines=$(grep -c '^i2pmae: error:' "$T/ce.err")
  if [ "$rc" = 124 ]; then fail "$n" "hung (timeout)"
  elif [ "$rc" != 1 ]; then fail "$n" "exit status $rc (want 1): $(grep -v '^\[' "$T/ce.err" | head -c 300 | tr '\n' ' ')"
  elif [ "$lines" != 1 ]; then fail "$n" "$lines error lines (want 1): $(head -c 300 "$T/ce.err" | tr '\n' ' ')"
  elif ! grep '^i2pmae: error:' "$T/ce.err" | grep -q -- "$pat"; then
    fail "$n" "error line does not match '$pat': $(grep '^i2pmae: error:' "$T/ce.err")"
  else pass "$n"; fi
}

need_features_writer
"$I2PMAE" synth --samples 24 --points 128 --seed 3 -o "$T/d.h5" > /dev/null 2>&1 || fail synth "could not make test data"
make_features "$T/d.h5" "$T/f.h5" > /dev/null 2>&1 || fail features "could not make test features"

# ---- disk full (issue 18, 1 and 2): a tmpfs of a few hundred KiB ----
mkdir -p "$T/full"
if mount -t tmpfs -o size=2m tmpfs "$T/full" 2> /dev/null; then
  trap 'umount "$T/full" 2> /dev/null; rm -rf "$T"' EXIT
  for np in 1 2; do
    clean_error "synth_disk_full_np$np" "disk full" $MPIRUN $np "$I2PMAE" synth --samples 2000 --points 256 -o "$T/full/s.h5"
    no_file "synth_disk_full_np${np}_no_output" "$T/full/s.h5"
  done
  # the first checkpoint (1.6 MB) fits, the second does not: rank 0 used to fail its dataset
  # create and wait in the error agreement while rank 1 waited in HDF5's barrier (a hang)
  P="--config $TINY --data $T/d.h5 --features $T/f.h5 --batch 8 --micro-batch 2 --epochs 20"
  clean_error pretrain_checkpoint_disk_full_np2 "ckpt-00000014.*disk full" $MPIRUN 2 "$I2PMAE" pretrain $P --steps 40 --checkpoint-every 7 -o "$T/full/run"
  check pretrain_disk_full_keeps_last_checkpoint test -f "$T/full/run/ckpt-00000007.h5"
  rm -rf "$T/full/run"
  umount "$T/full"
  mount -t tmpfs -o size=100k tmpfs "$T/full"
  # the first checkpoint does not fit: used to segfault in MPI_Finalize (the failed file open in HDF5)
  clean_error pretrain_checkpoint_disk_full_first_np2 "ckpt-00000007.*disk full" $MPIRUN 2 "$I2PMAE" pretrain $P --steps 40 --checkpoint-every 7 -o "$T/full/run"
  umount "$T/full"
else
  skip disk_full "cannot mount a tmpfs (not root?)"
fi

# ---- absurd sizes are refused before anything is allocated or written (issue 18, 3) ----
clean_error synth_absurd_samples "absurd" "$I2PMAE" synth --samples 9223372036854775807 -o "$T/huge.h5"
no_file synth_absurd_samples_no_output "$T/huge.h5"
if have_h5py; then
  $PY -c "
import h5py, numpy as np
f = h5py.File('$T/declared.h5', 'w')
f.create_dataset('data', shape=(4, 2**40, 3), dtype='f4', chunks=(1, 1024, 3))
f['label'] = np.zeros(4, dtype='i4')"
  clean_error convert_declared_huge "absurd\|disk full" "$I2PMAE" convert --format scanobjectnn --input "$T/declared.h5" -o "$T/conv.h5"
  no_file convert_declared_huge_no_output "$T/conv.h5"
else
  skip convert_declared_huge "python3 h5py missing"
fi

# ---- metadata checksums (issue 18, 7): a flipped byte in a checkpoint's attributes is an error ----
"$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" --batch 8 --micro-batch 2 --steps 1 --checkpoint-every 1 -o "$T/ck" > /dev/null 2>&1
if [ -f "$T/ck/ckpt-00000001.h5" ]; then
  for delta in -20 12 30; do # the root header before the attribute name, the name, its value
    $PY -c "
d = bytearray(open('$T/ck/ckpt-00000001.h5', 'rb').read())
i = d.find(b'epoch_pos') + $delta
d[i] ^= 0x10
open('$T/flip.h5', 'wb').write(d)"
    clean_error "checkpoint_attribute_flip_$delta" "corrupt" "$I2PMAE" svm --config "$TINY" --data "$T/d.h5" --test "$T/d.h5" --checkpoint "$T/flip.h5"
  done
  check checkpoint_unflipped_reads "$I2PMAE" svm --config "$TINY" --data "$T/d.h5" --test "$T/d.h5" --checkpoint "$T/ck/ckpt-00000001.h5"
else
  fail checkpoint_for_flips "pretrain wrote no checkpoint"
fi

# ---- hostile options (issue 18, 5 and 13) ----
# a newline in the run directory name used to inject gnuplot commands (`!` runs a shell)
(cd "$T" && expect_error pretrain_rundir_newline "control characters" "$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" --steps 1 -o "pw
!touch PWNED
")
if [ -e "$T/PWNED" ]; then fail pretrain_rundir_no_injection "gnuplot ran touch PWNED"; else pass pretrain_rundir_no_injection; fi
expect_error pretrain_lr_inf "--lr inf: must be positive and finite" "$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" -o "$T/lrinf" --lr inf
# --config DIR used to read as an empty file (pretrain then trained the spec network)
mkdir -p "$T/jobs"
expect_error config_is_directory "jobs: config file is a directory" "$I2PMAE" pretrain --config "$T/jobs" --data "$T/d.h5" --features "$T/f.h5" -o "$T/cfgdir" --steps 1
no_file config_is_directory_no_run "$T/cfgdir/loss.csv"

# ---- an output that is an input is refused, even with --force (issue 18, 10) ----
cp "$T/d.h5" "$T/in.h5"
ln -f "$T/in.h5" "$T/in_link.h5"
expect_error extract_output_is_input "is the --input file" "$I2PMAE" extract --input "$T/in.h5" -o "$T/in.h5" --force --vit random:tiny
expect_error render_dump_is_input_hard_link "--dump is the --input file" "$I2PMAE" render --input "$T/in.h5" --dump "$T/in_link.h5" -o "$T/p.png" --force
expect_error convert_output_is_input "is the --input file" "$I2PMAE" convert --format scanobjectnn --input "$T/in.h5" -o "$T/in.h5" --force
check output_is_input_left_intact cmp "$T/in.h5" "$T/d.h5"

# ---- --batch beyond the data is clamped (issue 18, 12 and 13) ----
# extract --batch 2000 on 24 samples padded every micro-batch to 2000 (14 GB for 6 samples)
check extract_batch_clamped_3gb sh -c "ulimit -v 3000000; exec '$I2PMAE' extract --input '$T/d.h5' --vit random:tiny -o '$T/bigbatch.h5' --batch 2000"
check synth_batch_huge "$I2PMAE" synth --samples 6 --points 16 -o "$T/hb.h5" --batch 9223372036854775807
check svm_batch_huge "$I2PMAE" svm --config "$TINY" --data "$T/d.h5" --test "$T/d.h5" --random-init --batch 9223372036854775807

# ---- the dataset fingerprint covers every cloud (issue 18, 8) ----
cp "$T/d.h5" "$T/d_edit.h5"
$PY -c "
import h5py
f = h5py.File('$T/d_edit.h5', 'r+')
f['points'][11, 5, 0] += 0.25"
expect_error pretrain_middle_cloud_edited "was extracted from another dataset" "$I2PMAE" pretrain --config "$TINY" --data "$T/d_edit.h5" --features "$T/f.h5" --batch 8 -o "$T/edited" --steps 1

# ---- feature values are validated (issue 18, 9) ----
bad_features() { # NAME PATTERN PYTHON-STATEMENT-ON-f
  cp "$T/f.h5" "$T/fbad.h5"
  $PY -c "
import h5py, numpy as np
f = h5py.File('$T/fbad.h5', 'r+')
$3"
  expect_error "$1" "$2" "$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/fbad.h5" --batch 8 --epochs 20 -o "$T/fbad_run" --steps 3
}
bad_features features_nan_point_saliency "/point_saliency: sample 3 holds a non-finite value" "f['point_saliency'][3, 7] = np.nan"
bad_features features_inf_patch "/patch: sample 5 holds a non-finite value" "f['patch'][5, 0, 0, 0, 0] = np.inf"
bad_features features_absurd_image "image 100000.*not a consistent layout" "f.attrs['image'] = np.int64(100000)"
bad_features features_storage_bf16 "storage 'bf16': must be fp32 or fp16" "f.attrs['storage'] = 'bf16'"
bad_features features_pixel_out_of_range "/pixel: sample .* outside" "f['pixel'][2, 0, 0, 0] = 30000"
mkdir -p "$T/st" && $PY "$ROOT/tests/ref/make_bad_safetensors.py" "$T/st" > /dev/null
expect_error extract_nan_weight "the ViT gave a non-finite value" "$I2PMAE" extract --input "$T/d.h5" --vit "timm:$T/st/nan_weight.safetensors" -o "$T/nan_features.h5"
if [ -e "$T/nan_features.h5" ]; then fail extract_nan_weight_no_output "features written"; else pass extract_nan_weight_no_output; fi

# ---- a requeued complete run whose final plot was killed finishes and exits 0 (issue 18, 11) ----
"$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" --batch 8 -o "$T/done_run" --steps 3 > /dev/null 2>&1
rm -f "$T/done_run/loss.png"; echo junk > "$T/done_run/loss.png.partial" # killed inside gnuplot
check pretrain_resume_complete_exits_0 "$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" --batch 8 -o "$T/done_run" --steps 3 --resume
check pretrain_resume_complete_plots sh -c "head -c 4 '$T/done_run/loss.png' | grep -q PNG && [ ! -e '$T/done_run/loss.png.partial' ]"
check pretrain_resume_complete_log_kept sh -c "[ \$(tail -n +2 '$T/done_run/loss.csv' | wc -l) = 3 ]"

# ---- svm: C must be finite; a training split of one class is an error (issue 18, 13) ----
expect_error svm_c_inf "--c inf: must be a positive number" "$I2PMAE" svm --config "$TINY" --data "$T/d.h5" --test "$T/d.h5" --random-init --c inf
cp "$T/d.h5" "$T/one_class.h5"
$PY -c "import h5py; h5py.File('$T/one_class.h5', 'r+')['label'][...] = 2"
expect_error svm_single_class_training "training split has a single class (2)" "$I2PMAE" svm --config "$TINY" --data "$T/one_class.h5" --test "$T/d.h5" --random-init

# ---- a checkpoint with NaN parameters is skipped on resume (issue 18, 13) ----
"$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" --batch 8 -o "$T/nan_run" --steps 2 --checkpoint-every 1 --keep 3 > /dev/null 2>&1
$PY -c "
import h5py, numpy as np
h5py.File('$T/nan_run/ckpt-00000002.h5', 'r+')['params'][5] = np.nan"
"$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" --batch 8 -o "$T/nan_run" --steps 3 --checkpoint-every 1 --resume > "$T/nan_run.out" 2>&1
check resume_skips_nan_checkpoint grep -q "skipping .*ckpt-00000002.h5: .*params\[5\] is not finite" "$T/nan_run.out"
check resume_from_older_checkpoint grep -q "steps 1 -> 3 (resumed)" "$T/nan_run.out"

# ---- two runs on one output: the second is refused, naming the first (issue 18, 13) ----
"$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" --batch 8 -o "$T/locked" --epochs 400 --steps 1200 > /dev/null 2>&1 &
first=$!
i=0; while [ $i -lt 300 ] && ! [ -s "$T/locked/lock" ]; do sleep 0.05; i=$((i + 1)); done
expect_error pretrain_second_run_refused "run directory .*locked is in use by another run (pid $first on " "$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" --batch 8 -o "$T/locked" --steps 3 --resume
kill "$first" 2> /dev/null; wait "$first" 2> /dev/null

# ---- degenerate clouds are refused, not turned into zeros (issue 18, 13) ----
$PY -c "
import h5py, numpy as np
d = np.random.default_rng(0).normal(size=(4, 16, 3)).astype('f4'); d[2] = 0.5
with h5py.File('$T/degen.h5', 'w') as f: f['data'] = d; f['label'] = np.arange(4, dtype='i4')
with h5py.File('$T/p1.h5', 'w') as f: f['data'] = d[:, :1]; f['label'] = np.arange(4, dtype='i4')"
expect_error convert_degenerate_cloud "sample 2: degenerate cloud (16 points, all equal)" "$I2PMAE" convert --format scanobjectnn --input "$T/degen.h5" -o "$T/degen_out.h5"
expect_error convert_one_point_cloud "sample 0: degenerate cloud (1 point" "$I2PMAE" convert --format scanobjectnn --input "$T/p1.h5" -o "$T/p1_out.h5"

# ---- an empty ShapeNet-55 list: an error (UBSan flagged qsort(NULL, 0) here; issue 18, 13) ----
mkdir -p "$T/sn_empty/shapenet_pc"
: > "$T/sn_empty/train.txt"; : > "$T/sn_empty/test.txt"
expect_error convert_shapenet_empty_list "0 synsets" "$I2PMAE" convert --format shapenet55 --input "$T/sn_empty" -o "$T/sn_empty.h5"

# ---- preemption: SIGTERM / SIGUSR1 finish the step, write a checkpoint, exit 75; the resumed run
# gives the losses of an uninterrupted one ----
PP="--config $TINY --data $T/d.h5 --features $T/f.h5 --batch 8 --epochs 20 --steps 40 --checkpoint-every 10"
"$I2PMAE" pretrain $PP -o "$T/pre_ref" > /dev/null 2>&1
for sig in TERM USR1; do
  "$I2PMAE" pretrain $PP -o "$T/pre_$sig" > "$T/pre_$sig.out" 2>&1 &
  p=$!
  i=0; while [ $i -lt 1500 ] && ! grep -q '^5,' "$T/pre_$sig/loss.csv" 2> /dev/null; do sleep 0.02; i=$((i + 1)); done
  kill -$sig $p
  wait $p; rc=$?
  if [ "$rc" = 75 ]; then pass "pretrain_sig${sig}_exit_75"; else fail "pretrain_sig${sig}_exit_75" "exit status $rc"; fi
  stop=$(ls "$T/pre_$sig" | sed -n 's/^ckpt-0*\([0-9]*\)\.h5$/\1/p' | sort -n | tail -1)
  if [ -n "$stop" ] && [ "$stop" -ge 5 ] && [ "$stop" -lt 40 ]; then pass "pretrain_sig${sig}_checkpoint_at_stop"; else fail "pretrain_sig${sig}_checkpoint_at_stop" "newest checkpoint: '$stop'"; fi
  check "pretrain_sig${sig}_resume" "$I2PMAE" pretrain $PP -o "$T/pre_$sig" --resume
  losses_equal "pretrain_sig${sig}_same_losses" "$T/pre_ref/loss.csv" "$T/pre_$sig/loss.csv" 0
done

# ---- preemption of extract, finetune and partseg: SIGTERM / SIGUSR1 stop at a safe point with
# what is done saved (exit 75); the resumed run gives the bits of an uninterrupted one ----
# stopped NAME SIG OUT PATTERN CMD...: CMD in the background (output in OUT) gets SIG once OUT
# matches PATTERN (a kill of mpirun reaches the ranks as SIGUSR1 only); it must exit 75.
stopped() {
  n=$1; sig=$2; out=$3; pat=$4; shift 4
  "$@" > "$out" 2>&1 &
  p=$!
  i=0; while [ $i -lt 1500 ] && ! grep -q "$pat" "$out" 2> /dev/null; do sleep 0.02; i=$((i + 1)); done
  kill -$sig $p
  wait $p; rc=$?
  if [ "$rc" = 75 ]; then pass "${n}_exit_75"; else fail "${n}_exit_75" "exit status $rc: $(tail -n 2 "$out" | tr '\n' ' ')"; fi
}
# newest_step DIR: the step of DIR's newest checkpoint ("" for none).
newest_step() {
  ls "$1" | sed -n 's/^ckpt-0*\([0-9]*\)\.h5$/\1/p' | sort -n | tail -1
}
# inside_epoch NAME DIR SPE: the newest checkpoint of DIR is a step inside an epoch of SPE steps.
inside_epoch() {
  s=$(newest_step "$2")
  if [ -n "$s" ] && [ $((s % $3)) != 0 ]; then pass "$1"; else fail "$1" "newest checkpoint: step '$s' ($3 steps per epoch)"; fi
}
# same_datasets NAME A B: every dataset of A equals B's (h5diff; attributes may differ).
same_datasets() {
  sets=$(h5ls -r "$2" 2>/dev/null | awk '$2 == "Dataset" { print $1 }')
  for d in $sets; do
    h5diff -q "$2" "$3" "$d" > /dev/null 2>&1 || { fail "$1" "$d differs"; return; }
  done
  if [ -n "$sets" ]; then pass "$1"; else fail "$1" "no datasets in $2"; fi
}

"$I2PMAE" synth --samples 96 --points 128 --seed 5 -o "$T/ft_tr.h5" > /dev/null 2>&1
"$I2PMAE" synth --samples 12 --points 128 --seed 6 -o "$T/ft_te.h5" > /dev/null 2>&1
FTP="--config $TINY --data $T/ft_tr.h5 --test $T/ft_te.h5 --batch 4 --micro-batch 2 --scratch --log-every 1 --epochs 3"
"$I2PMAE" finetune $FTP -o "$T/ft_ref" > /dev/null 2>&1
stopped finetune_sigTERM TERM "$T/ft_TERM.out" "epoch 1/3 step 3/24" "$I2PMAE" finetune $FTP -o "$T/ft_TERM"
stopped finetune_sigUSR1_np2 USR1 "$T/ft_USR1.out" "epoch 1/3 step 3/24" $MPIRUN 2 "$I2PMAE" finetune $FTP -o "$T/ft_USR1"
for run in TERM USR1; do
  inside_epoch "finetune_sig${run}_checkpoint_inside_epoch" "$T/ft_$run" 24
  check "finetune_sig${run}_resume" "$I2PMAE" finetune $FTP -o "$T/ft_$run" --resume
  check "finetune_sig${run}_same_metrics" cmp "$T/ft_ref/metrics.csv" "$T/ft_$run/metrics.csv"
  same_datasets "finetune_sig${run}_same_checkpoint" "$T/ft_ref/ckpt-00000072.h5" "$T/ft_$run/ckpt-00000072.h5"
done

"$I2PMAE" synth --parts --samples 48 --points 128 --seed 3 -o "$T/ps_tr.h5" > /dev/null 2>&1
"$I2PMAE" synth --parts --samples 12 --points 128 --seed 4 -o "$T/ps_te.h5" > /dev/null 2>&1
PSP="--config $TINY --data $T/ps_tr.h5 --test $T/ps_te.h5 --batch 4 --micro-batch 2 --scratch --warmup-epochs 1
  --prop-hidden 16 --prop-out 8 --label-dim 8 --head 16,16,8 --radius 0.5,1,1.5 --log-every 1 --epochs 3"
"$I2PMAE" partseg $PSP -o "$T/ps_ref" > /dev/null 2>&1
stopped partseg_sigTERM TERM "$T/ps_TERM.out" "epoch 1/3 step 2/12" "$I2PMAE" partseg $PSP -o "$T/ps_TERM"
inside_epoch partseg_sigTERM_checkpoint_inside_epoch "$T/ps_TERM" 12
check partseg_sigTERM_resume "$I2PMAE" partseg $PSP -o "$T/ps_TERM" --resume
check partseg_sigTERM_same_metrics cmp "$T/ps_ref/metrics.csv" "$T/ps_TERM/metrics.csv"
same_datasets partseg_sigTERM_same_checkpoint "$T/ps_ref/ckpt-00000036.h5" "$T/ps_TERM/ckpt-00000036.h5"

# extract_resumes NAME: the extract stopped into $T/NAME.h5 kept its .partial; rerun, it skips the
# samples done and gives the features of the uninterrupted run ($T/ex_ref.h5).
extract_resumes() {
  check "${1}_partial_kept" sh -c "[ -f '$T/$1.h5.partial' ] && [ ! -e '$T/$1.h5' ]"
  "$I2PMAE" extract $EX -o "$T/$1.h5" > "$T/$1.resume" 2>&1
  skipped=$(grep -o '"skipped":[0-9]*' "$T/$1.resume" | tr -dc 0-9)
  if [ -n "$skipped" ] && [ "$skipped" -gt 0 ] && [ "$skipped" -lt 120 ]; then pass "${1}_resume_skips_done"
  else fail "${1}_resume_skips_done" "skipped '$skipped' of 120: $(tail -n 2 "$T/$1.resume" | tr '\n' ' ')"; fi
  same_datasets "${1}_same_features" "$T/ex_ref.h5" "$T/$1.h5"
}
# launcher NP: the command that starts NP ranks; none for 1 (mpirun ends its ranks on SIGTERM; a
# lone process gets it itself).
launcher() {
  if [ "$1" != 1 ]; then echo "$MPIRUN $1"; fi
}

# extract: stops after a flush with the .partial and its /done mask kept; the rerun resumes
"$I2PMAE" synth --samples 120 --points 128 --seed 3 -o "$T/ex_in.h5" > /dev/null 2>&1
EX="--input $T/ex_in.h5 --vit random:tiny --batch 2 --flush 4"
"$I2PMAE" extract $EX -o "$T/ex_ref.h5" > /dev/null 2>&1
for run in "TERM 1" "USR1 2 --stages 2"; do
  set -- $run; sig=$1; np=$2; shift 2
  xn=extract_sig${sig}_np$np
  launch=$(launcher "$np")
  I2PMAE_PROGRESS_S=0.05 stopped "$xn" "$sig" "$T/$xn.out" " [1-9][0-9]*/120 samples" $launch "$I2PMAE" extract $EX "$@" -o "$T/$xn.h5"
  extract_resumes "$xn"
done

# ---- a signal during set-up (MPI start-up, reading data, building the model) is held, not fatal:
# the handler is in place from process start (main, before MPI_Init); the run stops at its first
# safe point (pretrain: after step 1; extract: after its second flush) with exit 75, and the resumed
# run gives the results of an uninterrupted one. I2PMAE_TEST_SETUP_SLEEP pauses the set-up after
# MPI_Init; the signal comes once rank 0 says so. ----
SETUP="env I2PMAE_TEST_SETUP_SLEEP=2"
stopped pretrain_setup_sigUSR1 USR1 "$T/pre_setup.out" "pausing 2 s in set-up" $SETUP "$I2PMAE" pretrain $PP -o "$T/pre_setup"
check pretrain_setup_sigUSR1_message grep -q "pretrain: stopped by signal 10 after saving its state" "$T/pre_setup.out"
s=$(newest_step "$T/pre_setup")
if [ "$s" = 1 ]; then pass pretrain_setup_sigUSR1_checkpoint_step_1; else fail pretrain_setup_sigUSR1_checkpoint_step_1 "newest checkpoint: step '$s'"; fi
check pretrain_setup_sigUSR1_resume "$I2PMAE" pretrain $PP -o "$T/pre_setup" --resume
losses_equal pretrain_setup_sigUSR1_same_losses "$T/pre_ref/loss.csv" "$T/pre_setup/loss.csv" 0
for run in "TERM 1" "USR1 2"; do
  set -- $run; sig=$1; np=$2
  xn=extract_setup_sig${sig}_np$np
  launch=$(launcher "$np")
  stopped "$xn" "$sig" "$T/$xn.out" "pausing 2 s in set-up" $SETUP $launch "$I2PMAE" extract $EX -o "$T/$xn.h5"
  n=10; [ "$sig" = TERM ] && n=15
  check "${xn}_message" grep -q "extract: stopped by signal $n after saving its state" "$T/$xn.out"
  extract_resumes "$xn"
done

# a rank killed during set-up still ends the job: mpirun's SIGTERM to the other rank is held (its
# handler is in place), its SIGKILL after that is not; the other rank pauses 30 s, the job must end
# within 10 s
env I2PMAE_TEST_SETUP_SLEEP=30 $MPIRUN 2 "$I2PMAE" pretrain $PP -o "$T/pre_setup_kill" > "$T/pre_setup_kill.out" 2>&1 &
mpid=$!
i=0; while [ $i -lt 1500 ] && ! grep -q "pausing 30 s in set-up" "$T/pre_setup_kill.out" 2> /dev/null; do sleep 0.02; i=$((i + 1)); done
ranks=$(pgrep -P $mpid)
victim=$(echo "$ranks" | sed -n 2p)
[ -n "$victim" ] && kill -9 "$victim" 2> /dev/null
i=0; while kill -0 $mpid 2> /dev/null && [ $i -lt 500 ]; do sleep 0.02; i=$((i + 1)); done
if [ -z "$victim" ]; then fail pretrain_setup_rank_killed_job_ends "no rank found (ranks: '$ranks')"
elif kill -0 $mpid 2> /dev/null; then
  fail pretrain_setup_rank_killed_job_ends "mpirun still running 10 s after a rank was killed"
  kill -9 $mpid $ranks 2> /dev/null
else pass pretrain_setup_rank_killed_job_ends; fi
wait $mpid 2> /dev/null
left="" # a rank still running (a zombie has ended: this container's init may not reap it)
for pid in $ranks; do st=$(ps -o stat= -p "$pid" 2> /dev/null); case "$st" in ""|Z*) ;; *) left="$left $pid";; esac; done
if [ -z "$left" ]; then pass pretrain_setup_rank_killed_no_rank_left; else fail pretrain_setup_rank_killed_no_rank_left "still running:$left"; kill -9 $left 2> /dev/null; fi

# ---- a requeued complete finetune / partseg run whose final plot was killed finishes its outputs
# and exits 0 (issue 18, 11) ----
for c in finetune partseg; do
  d=$T/ft_ref; P=$FTP
  [ $c = partseg ] && { d=$T/ps_ref; P=$PSP; }
  cp "$d/metrics.csv" "$T/$c.metrics"
  rm -f "$d/curves.png"; echo junk > "$d/curves.png.partial" # killed inside gnuplot
  check "${c}_resume_complete_exits_0" "$I2PMAE" $c $P -o "$d" --resume
  check "${c}_resume_complete_plots" sh -c "head -c 4 '$d/curves.png' | grep -q PNG && [ ! -e '$d/curves.png.partial' ]"
  check "${c}_resume_complete_metrics_kept" cmp "$T/$c.metrics" "$d/metrics.csv"
done
