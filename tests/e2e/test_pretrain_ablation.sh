# test_pretrain_ablation.sh -- the ablation switches of `i2pmae pretrain` (--masking, --loss-2d-weight,
# --loss-3d-weight, --targets, --visible) on the tiny network: --loss-2d-weight 0 gives exactly the
# steps of a run without any features file; random masking is deterministic per seed and does not
# read the saliency (a features file with other saliency values gives the same losses, while
# 2D-guided masking changes); the switches are recorded in the checkpoints' configuration and the
# JSON line; usage errors.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

train_data 24
need_features_file
P="--config $TINY --data $T/d.h5 --batch 8 --micro-batch 4 --steps 6 --checkpoint-every 6"

# ---- 3D only: the features file is not needed, and giving it changes nothing ----
check pretrain_3d_only_no_features mpi 2 "$I2PMAE" pretrain $P -o "$T/nof" --loss-2d-weight 0
check pretrain_3d_only_with_features mpi 2 "$I2PMAE" pretrain $P -o "$T/w0" --features "$T/f.h5" \
  --loss-2d-weight 0 --masking random
losses_equal pretrain_loss2d_0_same_steps_as_no_features "$T/nof/loss.csv" "$T/w0/loss.csv" 0
check pretrain_targets_none_same_as_weight_0 mpi 2 "$I2PMAE" pretrain $P -o "$T/tn" --features "$T/f.h5" \
  --targets none --masking random
losses_equal pretrain_targets_none_same_steps "$T/nof/loss.csv" "$T/tn/loss.csv" 0
check pretrain_3d_only_loss2d_column_zero awk -F, 'NR > 1 && $5 != 0 { exit 1 }' "$T/nof/loss.csv"
if have_h5py; then
  check pretrain_loss2d_0_same_checkpoint $PY -c "
import h5py, json, numpy as np
a, b = h5py.File('$T/nof/ckpt-00000006.h5', 'r'), h5py.File('$T/w0/ckpt-00000006.h5', 'r')
assert np.array_equal(a['params'][()], b['params'][()]) and np.array_equal(a['buffers'][()], b['buffers'][()])
c = json.loads(a.attrs['config'])
assert c['objective'] == {'masking': 'random', 'loss_3d_weight': 1, 'loss_2d_weight': 0, 'targets': 'none',
                          'visible': 2}, c['objective']
assert c['model']['feat_dim'] == 0 and 'vit' not in c['data'], c
"
else
  skip pretrain_loss2d_0_same_checkpoint "python3 h5py missing"
fi
check svm_on_3d_only_checkpoint mpi 1 "$I2PMAE" svm --config "$TINY" --data "$T/d.h5" --test "$T/d.h5" \
  --checkpoint "$T/nof/ckpt-00000006.h5" --c 1

# ---- masking: random is deterministic per seed and ignores the saliency; 2D-guided reads it ----
if have_h5py; then
  cp "$T/f.h5" "$T/f_sal.h5"
  check features_other_saliency $PY -c "
import h5py, numpy as np
with h5py.File('$T/f_sal.h5', 'r+') as f:
    s = f['point_saliency']
    s[...] = np.random.default_rng(5).uniform(0, 20, s.shape).astype(np.float32)
"
  R="$P --features $T/f.h5"
  check pretrain_random_a mpi 2 "$I2PMAE" pretrain $R -o "$T/ra" --masking random
  check pretrain_random_b mpi 1 "$I2PMAE" pretrain $R -o "$T/rb" --masking random
  losses_equal pretrain_random_masking_deterministic "$T/ra/loss.csv" "$T/rb/loss.csv" 1e-5
  check pretrain_random_other_saliency mpi 2 "$I2PMAE" pretrain $P --features "$T/f_sal.h5" -o "$T/rs" --masking random
  losses_equal pretrain_random_masking_ignores_saliency "$T/ra/loss.csv" "$T/rs/loss.csv" 0
  check pretrain_random_seed1 mpi 2 "$I2PMAE" pretrain $R -o "$T/r1" --masking random --seed 1
  check pretrain_random_masking_other_seed_differs sh -c "! cmp -s '$T/ra/loss.csv' '$T/r1/loss.csv'"
  check pretrain_guided_a mpi 2 "$I2PMAE" pretrain $R -o "$T/ga"
  check pretrain_guided_other_saliency mpi 2 "$I2PMAE" pretrain $P --features "$T/f_sal.h5" -o "$T/gs"
  check pretrain_guided_masking_reads_saliency sh -c "! cmp -s '$T/ga/loss.csv' '$T/gs/loss.csv'"
  check pretrain_guided_differs_from_random sh -c "! cmp -s '$T/ga/loss.csv' '$T/ra/loss.csv'"
else
  skip pretrain_masking "python3 h5py missing"
fi

# ---- weights, targets, visible: recorded in the JSON line ----
mpi 2 "$I2PMAE" pretrain $P -o "$T/v" --features "$T/f.h5" --visible 3 --loss-3d-weight 2 --loss-2d-weight 0.5 \
  > "$T/v.out" 2>&1
check pretrain_switches_in_json sh -c "tail -1 '$T/v.out' | grep -q '\"masking\":\"2d-guided\",\"loss_3d_weight\":2,\"loss_2d_weight\":0.5,\"targets\":\"clip\",\"visible\":3'"
check pretrain_weighted_loss awk -F, 'NR > 1 { d = $3 - (2 * $4 + 0.5 * $5); if (d < 0) d = -d; if (d > 1e-4 * $3) exit 1 }' "$T/v/loss.csv"
check pretrain_resume_same_switches mpi 2 "$I2PMAE" pretrain $P -o "$T/v" --features "$T/f.h5" --visible 3 \
  --loss-3d-weight 2 --loss-2d-weight 0.5 --steps 7 --resume
expect_error pretrain_resume_other_switch "configuration differs: 'objective\.loss_2d_weight' is 0.5 in the checkpoint but 0.25 here" \
  $MPIRUN 1 "$I2PMAE" pretrain $P -o "$T/v" --features "$T/f.h5" --visible 3 --loss-3d-weight 2 \
  --loss-2d-weight 0.25 --steps 8 --resume

# ---- usage errors ----
expect_error pretrain_guided_needs_features "--features is required for --masking 2d-guided" \
  "$I2PMAE" pretrain $P -o "$T/e1" --loss-2d-weight 0 --masking 2d-guided
expect_error pretrain_targets_need_features "--features is required for the 2D targets" \
  "$I2PMAE" pretrain $P -o "$T/e2"
expect_error pretrain_bad_masking "--masking centre: must be 2d-guided or random" \
  "$I2PMAE" pretrain $P -o "$T/e3" --masking centre
expect_error pretrain_bad_targets "--targets depth: must be clip or none" \
  "$I2PMAE" pretrain $P -o "$T/e4" --targets depth
expect_error pretrain_no_loss "no loss left" \
  "$I2PMAE" pretrain $P -o "$T/e5" --loss-3d-weight 0 --targets none
expect_error pretrain_visible_too_many "--visible 9: more than the 8 scale-2 tokens" \
  "$I2PMAE" pretrain $P -o "$T/e6" --features "$T/f.h5" --visible 9
