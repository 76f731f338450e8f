# test_pretrain_overlap.sh -- how a pre-training step runs does not change what it computes:
# the bucketed gradient all-reduce overlapped with the backward (--overlap-allreduce 1, tiny buckets
# so there are many) and activation recomputation (--recompute, with drop path on so its scales must
# replay) give bitwise the same losses and checkpoints (parameters, AdamW moments; BatchNorm buffers
# for the same rank count) as one all-reduce after the backward, on 1 and 2 ranks; a negative control
# (another seed) shows the comparison can fail. The JSON line carries the per-rank time split, the
# peak memory and the step arena; a rank failing mid-step while the other reduces ends the job with
# one error (no hang); bad options are refused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

train_data 48
need_features_file
P="--config $TINY --data $T/d.h5 --features $T/f.h5 --batch 8 --micro-batch 2 --steps 6 --drop-path 0.2"
CK=ckpt-00000006.h5

run() { # NAME NP OPTIONS...
  n=$1; np=$2; shift 2
  check "overlap_run_$n" sh -c "mpirun -np $np --oversubscribe --bind-to none '$I2PMAE' pretrain $P -o '$T/$n' $* > '$T/$n.out' 2>&1"
}
run np1_off 1 --overlap-allreduce 0
run np1_on 1 --bucket-mb 0.001
run np1_rc 1 --recompute --bucket-mb 0.01
run np2_off 2 --overlap-allreduce 0
run np2_on 2 --bucket-mb 0.001
run np2_rc 2 --recompute --overlap-allreduce 0
run np2_rc_on 2 --recompute --bucket-mb 0.01
run np1_seed 1 --seed 9

# same_run NAME A B DATASETS: loss.csv's loss columns byte for byte, and the checkpoint datasets
# with no difference at all (h5diff without a tolerance).
same_run() {
  n=$1; a=$2; b=$3; shift 3
  out=$(cut -d, -f1-5 "$T/$a/loss.csv" | cmp - "$T/$b/loss.csv.cut" 2>&1)
  for d in "$@"; do out="$out$(h5diff "$T/$a/$CK" "$T/$b/$CK" "/$d" "/$d" 2>&1)"; done
  if [ -z "$out" ]; then pass "$n"; else fail "$n" "$(echo "$out" | head -3 | tr '\n' ' ')"; fi
}
for r in np1_off np1_on np1_rc np2_off np2_on np2_rc np2_rc_on np1_seed; do
  [ -f "$T/$r/loss.csv" ] && cut -d, -f1-5 "$T/$r/loss.csv" > "$T/$r/loss.csv.cut"
done
W="params adamw/m adamw/v"
same_run overlap_np1_bitwise np1_on np1_off $W buffers
same_run overlap_np2_bitwise np2_on np2_off $W buffers
same_run overlap_np2_vs_np1_bitwise np2_on np1_off $W
same_run recompute_np1_bitwise np1_rc np1_off $W buffers
same_run recompute_np2_bitwise np2_rc np2_off $W buffers
same_run recompute_overlap_np2_bitwise np2_rc_on np2_off $W buffers
out=$(h5diff "$T/np1_off/$CK" "$T/np1_seed/$CK" /params /params 2>&1)
if [ -n "$out" ]; then pass overlap_negative_control; else fail overlap_negative_control "another seed gave the same parameters"; fi

# ---- the JSON line ----
J="$T/np2_on.out"
check overlap_json_fields sh -c "tail -1 '$J' | grep -q '\"overlap_allreduce\":true,\"bucket_mb\":0.001,\"recompute\":false,\"step_arena_bytes\":[1-9]'"
check overlap_json_per_rank sh -c "tail -1 '$J' | grep -q '\"per_rank\":\[{\"rank\":0,\"compute_s\":[0-9.e-]*,\"comm_s\":[0-9.e-]*,\"idle_s\":[0-9.e-]*,\"io_s\":[0-9.e-]*},{\"rank\":1,'"
check overlap_json_peak_memory sh -c "tail -1 '$J' | grep -q '\"peak_rss_bytes\":[1-9][0-9]*,\"peak_rss_bytes_per_rank\":\[[1-9][0-9]*,[1-9][0-9]*\]'"
check overlap_progress_peak_memory grep -q 'samples/s ETA .* peak RSS [0-9.]* GiB (max over ranks)' "$J"
check recompute_json sh -c "tail -1 '$T/np1_rc.out' | grep -q '\"recompute\":true'"

# ---- a rank failing mid-step while the other starts its reductions: one error, no hang ----
expect_error overlap_rank_fails "step 3: test fault on rank 1" \
  env I2PMAE_TEST_FAIL_STEP=3 $MPIRUN 2 "$I2PMAE" pretrain $P -o "$T/fail" --bucket-mb 0.001
expect_error overlap_rank_fails_no_overlap "step 3: test fault on rank 1" \
  env I2PMAE_TEST_FAIL_STEP=3 $MPIRUN 2 "$I2PMAE" pretrain $P -o "$T/fail0" --overlap-allreduce 0

# ---- bad options ----
expect_error overlap_bad_flag "--overlap-allreduce 2: must be 0 or 1" \
  "$I2PMAE" pretrain $P -o "$T/bad1" --overlap-allreduce 2
expect_error overlap_bad_bucket "--bucket-mb 0: must be positive" \
  "$I2PMAE" pretrain $P -o "$T/bad2" --bucket-mb 0
