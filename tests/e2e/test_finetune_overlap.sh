# test_finetune_overlap.sh -- `i2pmae finetune` with the bucketed gradient all-reduce overlapped with
# the backward (--overlap-allreduce 1, tiny buckets) and with activation recomputation (--recompute,
# drop path on) gives metrics.csv and a final checkpoint (parameters, buffers, AdamW moments)
# bitwise equal to one all-reduce after the backward, on 1 and 2 ranks; another seed differs
# (negative control); the JSON line has the per-rank time split and peak memory; bad options are
# refused.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

finetune_fixture
FT="--config $TINY --data $T/d.h5 --test $T/te.h5 --checkpoint $PRE --batch 8 --micro-batch 2 --warmup-epochs 1 --lr 0.002 --epochs 2 --drop-path 0.3"
CK=ckpt-00000012.h5

run() { # NAME NP OPTIONS...
  n=$1; np=$2; shift 2
  check "ft_overlap_run_$n" sh -c "mpirun -np $np --oversubscribe --bind-to none '$I2PMAE' finetune $FT -o '$T/$n' $* > '$T/$n.out' 2>&1"
}
run np1_off 1 --overlap-allreduce 0
run np1_on 1 --bucket-mb 0.001
run np1_rc 1 --recompute
run np2_off 2 --overlap-allreduce 0
run np2_on 2 --bucket-mb 0.001
run np2_rc_on 2 --recompute --bucket-mb 0.01
run np1_seed 1 --seed 9

same_run() { # NAME A B DATASETS...
  n=$1; a=$2; b=$3; shift 3
  out=$(cmp "$T/$a/metrics.csv" "$T/$b/metrics.csv" 2>&1)
  for d in "$@"; do out="$out$(h5diff "$T/$a/$CK" "$T/$b/$CK" "/$d" "/$d" 2>&1)"; done
  if [ -z "$out" ]; then pass "$n"; else fail "$n" "$(echo "$out" | head -3 | tr '\n' ' ')"; fi
}
W="params buffers adamw/m adamw/v"
same_run ft_overlap_np1_bitwise np1_on np1_off $W
same_run ft_overlap_np2_bitwise np2_on np2_off $W
same_run ft_recompute_np1_bitwise np1_rc np1_off $W
same_run ft_recompute_overlap_np2_bitwise np2_rc_on np2_off $W
out=$(h5diff "$T/np1_off/$CK" "$T/np1_seed/$CK" /params /params 2>&1)
if [ -n "$out" ]; then pass ft_overlap_negative_control; else fail ft_overlap_negative_control "another seed gave the same parameters"; fi
check ft_overlap_json sh -c "tail -1 '$T/np2_rc_on.out' | grep -q '\"overlap_allreduce\":true,\"bucket_mb\":0.01,\"recompute\":true'"
check ft_per_rank_json sh -c "tail -1 '$T/np2_on.out' | grep -q '\"per_rank\":\[{\"rank\":0,\"compute_s\":[0-9.e-]*,\"comm_s\":[0-9.e-]*,\"idle_s\":[0-9.e-]*,\"io_s\":[0-9.e-]*},{\"rank\":1,.*\"idle_share\"'"
check ft_peak_memory_json sh -c "tail -1 '$T/np2_on.out' | grep -q '\"peak_rss_bytes\":[1-9][0-9]*,\"peak_rss_bytes_per_rank\":\[[1-9][0-9]*,[1-9][0-9]*\]'"

expect_error ft_overlap_bad_flag "--overlap-allreduce 2: must be 0 or 1" \
  "$I2PMAE" finetune $FT -o "$T/bad1" --overlap-allreduce 2
expect_error ft_overlap_bad_bucket "--bucket-mb -1: must be positive" \
  "$I2PMAE" finetune $FT -o "$T/bad2" --bucket-mb -1
