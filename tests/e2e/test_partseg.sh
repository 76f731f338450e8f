# test_partseg.sh -- `i2pmae partseg` end to end on a tiny network (the data side is
# test_partseg_data.sh), from a pre-trained encoder:
# metrics.csv and the final parameters bitwise equal on 1 and 2 ranks for a fixed micro-batch, a
# run killed with SIGKILL and resumed equal to an uninterrupted one (metrics and best record),
# outputs (best.h5, metrics.csv, per_category.csv, JSON with last and best), --eval-only and its
# predictions.h5 (independent mIoU) drawn by render --segmentation, and bad
# input (no /seg, a part label outside its category, a checkpoint of another architecture).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

check synth_parts "$I2PMAE" synth --parts --samples 24 --points 128 --seed 3 -o "$T/tr.h5"
check synth_parts_test "$I2PMAE" synth --parts --samples 12 --points 128 --seed 4 -o "$T/te.h5"
check synth_plain "$I2PMAE" synth --samples 12 --points 128 -o "$T/plain.h5"

# ---- a pre-trained tiny encoder ----
check synth_pre "$I2PMAE" synth --samples 16 --points 128 --seed 5 -o "$T/pre.h5"
check features make_features "$T/pre.h5" "$T/f.h5"
check pretrain_for_partseg "$I2PMAE" pretrain --config "$TINY" --data "$T/pre.h5" --features "$T/f.h5" -o "$T/pre" --batch 8 --steps 2
PRE="$T/pre/ckpt-00000002.h5"
[ -f "$PRE" ] || { fail pretrain_checkpoint_missing "no pre-training checkpoint; stopping"; exit 0; }
PS="--config $TINY --data $T/tr.h5 --test $T/te.h5 --batch 8 --micro-batch 4 --warmup-epochs 1 --lr 0.002
  --prop-hidden 16 --prop-out 8 --label-dim 8 --head 16,16,8 --radius 0.5,1,1.5 --log-every 100"

# ---- 1 vs 2 ranks ----
for np in 1 2; do
  mpi $np "$I2PMAE" partseg $PS --checkpoint "$PRE" -o "$T/np$np" --epochs 3 > "$T/np$np.out" 2>&1
  check "partseg_np$np" grep -q '"end_epoch":3' "$T/np$np.out"
done
check partseg_np2_metrics_bitwise_np1 cmp "$T/np1/metrics.csv" "$T/np2/metrics.csv"
check partseg_np2_params_bitwise_np1 $PY -c "
import h5py, numpy as np, sys
a, b = (h5py.File(sys.argv[i] + '/ckpt-00000009.h5') for i in (1, 2))
sys.exit(not all(np.array_equal(a[k][:], b[k][:]) for k in ('params', 'buffers', 'adamw/m', 'adamw/v')))" "$T/np1" "$T/np2"
check partseg_learns awk -F, 'NR == 2 { a = $3 } END { exit !($3 < a) }' "$T/np1/metrics.csv"
check partseg_outputs sh -c "[ -f '$T/np1/best.h5' ] && [ -f '$T/np1/per_category.csv' ] && grep -q '^epoch,lr,train_loss,train_acc,instance_miou,class_miou,test_acc$' '$T/np1/metrics.csv'"
for k in instance_miou_last class_miou_last instance_miou_best class_miou_best best_epoch last_epoch best_checkpoint; do
  check "partseg_json_$k" sh -c "[ -n '$(json_field "$T/np1.out" $k)' ]"
done
check partseg_best_h5 $PY -c "
import h5py, sys
b = h5py.File(sys.argv[1])
assert 'params' in b and 'adamw/m' not in b and b['best/epoch'][0] == b.attrs['epoch'] - 1" "$T/np1/best.h5"
mpi 2 "$I2PMAE" partseg --eval-only --checkpoint "$T/np1/best.h5" --test "$T/te.h5" > "$T/eval.out" 2>&1
check partseg_eval_only_equals_best sh -c "[ '$(json_field "$T/eval.out" instance_miou)' = '$(json_field "$T/np1.out" instance_miou_best)' ]"

# ---- predictions.h5 beside the checkpoint, and its picture ----
check partseg_predictions_written grep -q "\"predictions\":\"$T/np1/predictions.h5\"" "$T/eval.out"
check partseg_predictions_miou $PY -c "
import h5py, numpy as np, sys
p, t = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
pts, seg, pred, cat = p['points'][:], p['seg'][:], p['pred'][:], p['category'][:]
assert pts.shape == (12, 128, 3) and pts.dtype == np.float32, pts.shape
assert seg.shape == pred.shape == (12, 128) and seg.dtype == pred.dtype == np.int32
assert cat.shape == (12,) and cat.dtype == np.int32
assert np.array_equal(pts, t['points'][:, :128]) and np.array_equal(cat, t['label'][:].reshape(-1))
counts = [int(c) for c in str(t.attrs['parts_per_class']).split()]
first = np.concatenate([[0], np.cumsum(counts)])
ious = []
for s in range(12):
    c = cat[s]
    pi = []
    for q in range(first[c], first[c + 1]):
        u = np.sum((pred[s] == q) | (seg[s] == q))
        pi.append(1.0 if u == 0 else np.sum((pred[s] == q) & (seg[s] == q)) / u)
    ious.append(np.mean(pi))
assert np.all((pred >= first[cat][:, None]) & (pred < first[cat + 1][:, None])), 'prediction outside category'
want = float(sys.argv[3])
assert abs(np.mean(ious) - want) < 1e-9, (np.mean(ious), want)
assert not (pred == seg).all(), 'predictions equal the truth: the test cannot tell'
" "$T/np1/predictions.h5" "$T/te.h5" "$(json_field "$T/eval.out" instance_miou)"
mpi 1 "$I2PMAE" partseg --eval-only --checkpoint "$T/np1/best.h5" --test "$T/te.h5" --predictions "$T/pred1.h5" > "$T/eval1.out" 2>&1
check partseg_predictions_option_np1_equals_np2 $PY -c "
import h5py, numpy as np, sys
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
sys.exit(not all(np.array_equal(a[k][:], b[k][:]) for k in ('points', 'seg', 'pred', 'category')))" "$T/pred1.h5" "$T/np1/predictions.h5"
check render_segmentation "$I2PMAE" render --segmentation "$T/np1/predictions.h5" --sample 3 --image 64 -o "$T/seg.png"
check render_segmentation_png $PY -c "
import struct, sys
b = open(sys.argv[1], 'rb').read()
assert b[:8] == b'\x89PNG\r\n\x1a\n', b[:8]
w, h = struct.unpack('>II', b[16:24])
assert (w, h) == (2 * 64 + 4, 3 * 64 + 8), (w, h)" "$T/seg.png"
expect_error render_segmentation_sample_range "\-\-sample 12: .*predictions.h5 has samples 0..11" \
  "$I2PMAE" render --segmentation "$T/np1/predictions.h5" --sample 12 -o "$T/seg2.png"
expect_error render_segmentation_missing_file "nothere.h5" \
  "$I2PMAE" render --segmentation "$T/nothere.h5" --sample 0 -o "$T/seg3.png"
check render_segmentation_nothing_left sh -c "[ ! -e '$T/seg2.png' ] && [ ! -e '$T/seg3.png' ] && [ ! -e '$T/seg2.png.partial' ]"

# ---- SIGKILL mid-run, then --resume: the same metrics and best record ----
R="--epochs 5 --keep 2"
mpi 2 "$I2PMAE" partseg $PS --checkpoint "$PRE" -o "$T/ref" $R > "$T/ref.out" 2>&1
check partseg_uninterrupted grep -q '"end_epoch":5' "$T/ref.out"
$MPIRUN 2 "$I2PMAE" partseg $PS --checkpoint "$PRE" -o "$T/kill" $R > "$T/kill.out" 2>&1 &
mpid=$!
wait_for_line "$T/kill/metrics.csv" 1,
kill_ranks partseg_killed_mid_run $mpid "$T/kill/metrics.csv" 4,
mpi 2 "$I2PMAE" partseg $PS --checkpoint "$PRE" -o "$T/kill" $R --resume > "$T/resume.out" 2>&1
check partseg_resumed grep -q '"resumed":true' "$T/resume.out"
check partseg_resume_same_metrics cmp "$T/ref/metrics.csv" "$T/kill/metrics.csv"
for k in instance_miou_best class_miou_best best_epoch instance_miou_last; do
  check "partseg_resume_same_$k" sh -c "[ '$(json_field "$T/ref.out" $k)' = '$(json_field "$T/resume.out" $k)' ] && [ -n '$(json_field "$T/ref.out" $k)' ]"
done

# ---- bad input ----
expect_error partseg_no_seg "plain.h5: no /seg dataset: not a part-segmentation file" \
  "$I2PMAE" partseg $PS --data "$T/plain.h5" --scratch -o "$T/bad1" --epochs 1
cp "$T/tr.h5" "$T/badseg.h5"
$PY -c "import h5py, sys; f = h5py.File(sys.argv[1], 'r+'); s = f['seg']; s[3, 7] = 13" "$T/badseg.h5"
expect_error partseg_part_outside_category "badseg.h5: /seg: sample 3 point 7 has part 13, outside the parts \[6, 8) of its category 3" \
  $MPIRUN 2 "$I2PMAE" partseg $PS --data "$T/badseg.h5" --scratch -o "$T/bad2" --epochs 1
check pretrain_other_arch "$I2PMAE" pretrain --config "$TINY" --dims 12,24,36 --dec-dims 36,24 --data "$T/pre.h5" --features "$T/f.h5" -o "$T/pre2" --batch 8 --steps 1
expect_error partseg_other_architecture "partseg: tensor 'merge2.conv3.weight' has shape (36,48) in the pre-trained model, (48,48) here" \
  $MPIRUN 2 "$I2PMAE" partseg $PS --checkpoint "$T/pre2/ckpt-00000001.h5" -o "$T/bad3" --epochs 1
expect_error partseg_checkpoint_and_scratch "give exactly one of --checkpoint" \
  "$I2PMAE" partseg $PS --checkpoint "$PRE" --scratch -o "$T/bad4"
# every command that starts from a pre-trained network refuses the other kinds with the same line
# (ckpt_kind.c): a run directory, a part-segmentation or a fine-tuning checkpoint
expect_error partseg_own_checkpoint_as_pretrained "\-\-checkpoint .*best.h5: is a part-segmentation checkpoint; --checkpoint takes a pre-training one" \
  "$I2PMAE" partseg $PS --checkpoint "$T/np1/best.h5" -o "$T/bad5" --epochs 1
expect_error partseg_rundir_as_checkpoint "pre: is a directory (a run directory?); --checkpoint takes a pre-training checkpoint file, e.g. .*pre/ckpt-00000002.h5" \
  "$I2PMAE" partseg $PS --checkpoint "$T/pre" -o "$T/bad6" --epochs 1
expect_error finetune_partseg_checkpoint_as_pretrained "best.h5: is a part-segmentation checkpoint; --checkpoint takes a pre-training one" \
  "$I2PMAE" finetune --config "$TINY" --data "$T/tr.h5" --test "$T/te.h5" --batch 8 --checkpoint "$T/np1/best.h5" -o "$T/bad7" --epochs 1
expect_error pretrain_init_partseg_checkpoint "\-\-init .*best.h5: is a part-segmentation checkpoint; --init takes a pre-training one" \
  "$I2PMAE" pretrain --config "$TINY" --data "$T/pre.h5" --features "$T/f.h5" -o "$T/bad8" --batch 8 --steps 1 --init "$T/np1/best.h5"
expect_error svm_partseg_checkpoint "best.h5: is a part-segmentation checkpoint; --checkpoint takes a pre-training one" \
  "$I2PMAE" svm --data "$T/pre.h5" --test "$T/pre.h5" --checkpoint "$T/np1/best.h5"
expect_error export_partseg_checkpoint "best.h5: is a part-segmentation checkpoint; export takes a pre-training or fine-tuning one" \
  "$I2PMAE" export --checkpoint "$T/np1/best.h5" --output "$T/bad9.safetensors"
"$I2PMAE" info "$T/np1/best.h5" > "$T/info_ps.out" 2>&1
"$I2PMAE" info "$PRE" > "$T/info_pre.out" 2>&1
"$I2PMAE" info "$T/tr.h5" > "$T/info_data.out" 2>&1
check info_checkpoint_kinds sh -c "grep -q '^checkpoint: part-segmentation, step [0-9]*, epoch [0-9]*; taken by partseg --eval-only' '$T/info_ps.out' &&
  grep -q '^checkpoint: pre-training, step 2, epoch [0-9]*; taken by finetune, partseg, svm' '$T/info_pre.out' &&
  [ '$(json_field "$T/info_pre.out" checkpoint_kind)' = '\"pre-training\"' ] &&
  ! grep -q '^checkpoint:' '$T/info_data.out' && ! grep -q checkpoint_kind '$T/info_data.out'"
expect_error partseg_eval_only_pretrain_checkpoint "pre/ckpt-00000002.h5: is a pre-training checkpoint; partseg --eval-only takes a part-segmentation one (RUNDIR/best.h5 or RUNDIR/ckpt-\*.h5 of i2pmae partseg); a pre-training checkpoint is for finetune, partseg" \
  "$I2PMAE" partseg --eval-only --checkpoint "$PRE" --test "$T/te.h5"
check wrong_checkpoints_nothing_written sh -c "[ ! -e '$T/bad8/ckpt-00000001.h5' ] && [ ! -e '$T/bad9.safetensors' ]"
