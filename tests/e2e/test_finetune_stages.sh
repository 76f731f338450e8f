# test_finetune_stages.sh -- `i2pmae finetune --stages S` (pipeline parallel, ft_pipe.h) on the tiny
# network from scratch (drop path and dropout on): metrics.csv, the last checkpoint and best.h5 are
# bitwise those of the data-parallel run with ranks / S ranks (S = 2, 3 at one replica, 1F1B and
# GPipe, balanced and hand-set splits; 2 replicas x 2 stages on 4 ranks; with --recompute and
# --precision bf16 where the CPU has it); runs resume across grids (S = 2 -> data parallel, data
# parallel -> S = 3, 2 ranks -> 2 x 2) with the uninterrupted rows and checkpoint (the moments
# read back in slices: wrong ones would change the later rows); SIGUSR1 inside an epoch under
# S = 2 stops with a checkpoint there that resumes exactly on one rank; bad grids, splits and
# schedules, and corrupt checkpoints read in slices, give one error and every rank exits non-zero.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"

check synth_train "$I2PMAE" synth --samples 48 --points 256 --seed 3 -o "$T/d.h5"
check synth_test "$I2PMAE" synth --samples 24 --points 256 --seed 4 -o "$T/te.h5"
FT="--config $TINY --data $T/d.h5 --test $T/te.h5 --scratch --batch 8 --micro-batch 2 --warmup-epochs 1 --lr 0.002 --drop-path 0.3 --sched-epochs 2"
CK=ckpt-00000012.h5

# same_run NAME DIR_A DIR_B: metrics.csv byte-equal (it holds no timings), the last checkpoint
# and best.h5 equal in every dataset and attribute (h5diff), confusion.csv equal.
same_run() {
  out=$(cmp "$2/metrics.csv" "$3/metrics.csv" 2>&1)
  [ -s "$2/metrics.csv" ] || out="no $2/metrics.csv"
  for f in "$CK" best.h5; do out="$out$(h5diff "$2/$f" "$3/$f" 2>&1)"; done
  out="$out$(cmp "$2/confusion.csv" "$3/confusion.csv" 2>&1)"
  if [ -z "$out" ]; then pass "$1"; else fail "$1" "$(echo "$out" | head -3 | tr '\n' ' ')"; fi
}

# ---- grid independence ----
check ftst_dp_np1 mpi 1 "$I2PMAE" finetune $FT --epochs 2 -o "$T/dp1"
check ftst_s2_np2 mpi 2 "$I2PMAE" finetune $FT --epochs 2 -o "$T/s2" --stages 2
check ftst_s3_np3 sh -c "mpirun -np 3 --oversubscribe --bind-to none '$I2PMAE' finetune $FT --epochs 2 -o '$T/s3' --stages 3 > '$T/s3.out' 2>&1"
check ftst_s3_gpipe mpi 3 "$I2PMAE" finetune $FT --epochs 2 -o "$T/s3g" --stages 3 --pipe-schedule gpipe \
  --stage-split 1,1,3
check ftst_s2_split41 mpi 2 "$I2PMAE" finetune $FT --epochs 2 -o "$T/s2h" --stages 2 --stage-split 4,1
same_run ftst_s2_bitwise_dp1 "$T/dp1" "$T/s2"
same_run ftst_s3_bitwise_dp1 "$T/dp1" "$T/s3"
same_run ftst_s3_gpipe_bitwise_dp1 "$T/dp1" "$T/s3g"
same_run ftst_s2_split41_bitwise_dp1 "$T/dp1" "$T/s2h"
check ftst_dp_np2 mpi 2 "$I2PMAE" finetune $FT --epochs 2 -o "$T/dp2"
check ftst_d2_s2_np4 sh -c "mpirun -np 4 --oversubscribe --bind-to none '$I2PMAE' finetune $FT --epochs 2 -o '$T/d2s2' --stages 2 > '$T/d2s2.out' 2>&1"
same_run ftst_np4_s2_bitwise_np2 "$T/dp2" "$T/d2s2"
check ftst_split_logged grep -q 'finetune: pipeline of 3 stages x 1 replicas, 1f1b schedule; stage 0: embed0 (.*GFLOP/sample.*), stage 2: .*head' "$T/s3.out"
check ftst_grid_logged grep -q 'batch 8 = 4 micro-batches of 2 on 2 replicas x 2 stages (4 ranks);' "$T/d2s2.out"
check ftst_grid_logged_s3 grep -q 'batch 8 = 4 micro-batches of 2 on 1 replicas x 3 stages (3 ranks);' "$T/s3.out"
check ftst_json sh -c "tail -1 '$T/s3.out' | grep -q '\"stages\":3,\"seconds_pipe_wait\":'"
# under --stages the stages reduce after the step: no overlapped reduction, whatever the option
check ftst_json_no_overlap sh -c "tail -1 '$T/d2s2.out' | grep -q '\"overlap_allreduce\":false,'"
check ftst_s2_seed9 mpi 2 "$I2PMAE" finetune $FT --epochs 2 -o "$T/s2seed" --stages 2 --seed 9
out=$(h5diff "$T/dp1/$CK" "$T/s2seed/$CK" /params /params 2>&1)
if [ -n "$out" ]; then pass ftst_negative_control; else fail ftst_negative_control "another seed gave the same parameters"; fi

# ---- --recompute and --precision bf16 apply on the stages alike (bf16 where the CPU has it) ----
X="--recompute"
grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo && X="$X --precision bf16"
check ftst_x_dp mpi 1 "$I2PMAE" finetune $FT --epochs 1 -o "$T/xdp" $X
check ftst_x_s2 mpi 2 "$I2PMAE" finetune $FT --epochs 1 -o "$T/xs2" $X --stages 2 --pipe-schedule gpipe
check ftst_x_bitwise sh -c "cmp '$T/xdp/metrics.csv' '$T/xs2/metrics.csv' && h5diff '$T/xdp/ckpt-00000006.h5' '$T/xs2/ckpt-00000006.h5'"

# ---- resume on another grid ----
check ftst_grid_first mpi 2 "$I2PMAE" finetune $FT --epochs 1 -o "$T/g" --stages 2
check ftst_grid_resume mpi 1 "$I2PMAE" finetune $FT --epochs 2 -o "$T/g" --resume
same_run ftst_grid_resume_same "$T/dp1" "$T/g"
check ftst_grid_back mpi 1 "$I2PMAE" finetune $FT --epochs 1 -o "$T/g1"
check ftst_grid_resume_s3 mpi 3 "$I2PMAE" finetune $FT --epochs 2 -o "$T/g1" --resume --stages 3
same_run ftst_grid_resume_s3_same "$T/dp1" "$T/g1"
# 2 ranks' epoch-0 checkpoint resumed on 2 replicas x 2 stages (every rank reads its stage's
# moments, the second replica's too): the 2-rank run's rows and checkpoint
rm -rf "$T/g4"; cp -r "$T/dp2" "$T/g4"; rm "$T/g4/$CK"
check ftst_grid_resume_d2s2 mpi 4 "$I2PMAE" finetune $FT --epochs 2 -o "$T/g4" --resume --stages 2
same_run ftst_grid_resume_d2s2_same "$T/dp2" "$T/g4"

# ---- SIGUSR1 inside an epoch under S = 2: the checkpoint there resumes exactly (on 1 rank) ----
FTP="--config $TINY --data $T/d.h5 --test $T/te.h5 --scratch --batch 4 --micro-batch 2 --log-every 1 --epochs 2 --drop-path 0.3"
check ftst_sig_ref mpi 1 "$I2PMAE" finetune $FTP -o "$T/pref"
$MPIRUN 2 "$I2PMAE" finetune $FTP -o "$T/p" --stages 2 > "$T/p.out" 2>&1 &
p=$!
# the signal as soon as the run has printed its setup line (every rank blocks SIGUSR1 from main on, so
# it stays pending until the end of the first step): waiting for a step line instead raced with the
# run, whose tiny steps took the remaining 9 of the epoch before the signal reached it (once in CI)
i=0; while [ $i -lt 1500 ] && ! grep -q "protocol, .* train / .* test samples" "$T/p.out" 2> /dev/null; do sleep 0.02; i=$((i + 1)); done
kill -USR1 $p
wait $p; rc=$?
s=$(ls "$T/p" | sed -n 's/^ckpt-0*\([0-9]*\)\.h5$/\1/p' | sort -n | tail -1)
if [ "$rc" = 75 ] && [ -n "$s" ] && [ $((s % 12)) != 0 ]; then pass ftst_signal_stop_inside_epoch
else fail ftst_signal_stop_inside_epoch "exit $rc, newest checkpoint step '$s'"; fi
check ftst_signal_resume mpi 1 "$I2PMAE" finetune $FTP -o "$T/p" --resume
check ftst_signal_same_metrics cmp "$T/pref/metrics.csv" "$T/p/metrics.csv"
check ftst_signal_same_checkpoint h5diff "$T/pref/ckpt-00000024.h5" "$T/p/ckpt-00000024.h5"

# ---- bad input: one error line, every rank exits non-zero ----
every_rank() { # NAME NP PATTERN ARGS...
  n=$1; np=$2; pat=$3; shift 3
  expect_error "$n" "$pat" $MPIRUN "$np" "$I2PMAE" finetune $FT --epochs 1 -o "$T/bad" "$@"
  rm -f "$T"/rc.*
  timeout 120 $MPIRUN "$np" sh -c '"$0" "$@" > /dev/null 2>&1; echo $? > "'"$T"'/rc.$OMPI_COMM_WORLD_RANK"' \
    "$I2PMAE" finetune $FT --epochs 1 -o "$T/bad" "$@" > /dev/null 2>&1
  bad=0; cnt=0
  for f in "$T"/rc.*; do [ -f "$f" ] || continue; cnt=$((cnt + 1)); [ "$(cat "$f")" = 0 ] && bad=1; done
  if [ "$cnt" = "$np" ] && [ $bad = 0 ]; then pass "${n}_every_rank"; else fail "${n}_every_rank" "$cnt of $np rank statuses, a zero one: $bad"; fi
}
every_rank ftst_more_than_units 2 "--stages 6: the network has only 5 pipeline units (embed0, encoder.0, encoder.1, encoder.2, head)" --stages 6
every_rank ftst_not_divisor 3 "world size 3 is not a multiple of --stages 2" --stages 2
every_rank ftst_split_short 2 "--stage-split 2,2: 2 stages holding 4 units, but --stages is 2 and the network has 5 units" \
  --stages 2 --stage-split 2,2
every_rank ftst_split_syntax 2 "--stage-split 2,x: must be 2 positive unit counts" --stages 2 --stage-split 2,x
every_rank ftst_schedule 2 "--pipe-schedule 2f2b: must be gpipe or 1f1b" --stages 2 --pipe-schedule 2f2b
expect_error ftst_split_needs_stages "--stage-split 1,4: needs --stages 2 or more" \
  "$I2PMAE" finetune $FT --epochs 1 -o "$T/bad" --stage-split 1,4

# ---- a corrupt checkpoint under --stages 2: the sliced reader (ckpt_read_parts' moments) ----
# A copy of the S = 2 run's last checkpoint with /adamw/m shortened, /adamw/v of another shape, or
# /adamw/m's last chunk (stage 1's slice only) altered under its Fletcher32 checksum: --resume
# gives one error line naming the file and the problem, every rank exits non-zero, nobody hangs.
# corrupt_ckpt DIR WHAT: DIR/ckpt-00000012.h5 from $T/s2 with WHAT (short, shape, checksum) done.
corrupt_ckpt() {
  rm -rf "$1"; mkdir -p "$1"; cp "$T/s2/$CK" "$1/"
  $PY - "$1/$CK" "$2" << 'PYEOF'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r+")
if sys.argv[2] == "short":
    m = f["/adamw/m"][:-5]; del f["/adamw/m"]; f.create_dataset("/adamw/m", data=m, chunks=True, fletcher32=True)
elif sys.argv[2] == "shape":
    v = f["/adamw/v"][:]; del f["/adamw/v"]; f.create_dataset("/adamw/v", data=v.reshape(1, -1), fletcher32=True)
else:
    d = f["/adamw/m"]; last = d.id.get_num_chunks() - 1; info = d.id.get_chunk_info(last)
    mask, raw = d.id.read_direct_chunk(info.chunk_offset)
    raw = bytearray(raw); raw[len(raw) // 3] ^= 0x40
    d.id.write_direct_chunk(info.chunk_offset, bytes(raw), mask)
f.close()
PYEOF
}
# resume_every_rank NAME DIR PATTERN: --resume of DIR at S = 2 fails alike on both ranks.
resume_every_rank() {
  n=$1; d=$2; pat=$3
  expect_error "$n" "$pat" $MPIRUN 2 "$I2PMAE" finetune $FT --epochs 3 -o "$d" --resume --stages 2
  rm -f "$T"/rc.*
  timeout 120 $MPIRUN 2 sh -c '"$0" "$@" > /dev/null 2>&1; echo $? > "'"$T"'/rc.$OMPI_COMM_WORLD_RANK"' \
    "$I2PMAE" finetune $FT --epochs 3 -o "$d" --resume --stages 2 > /dev/null 2>&1
  bad=0; cnt=0
  for f in "$T"/rc.*; do [ -f "$f" ] || continue; cnt=$((cnt + 1)); [ "$(cat "$f")" = 0 ] && bad=1; done
  if [ "$cnt" = 2 ] && [ $bad = 0 ]; then pass "${n}_every_rank"; else fail "${n}_every_rank" "$cnt of 2 rank statuses, a zero one: $bad"; fi
}
if have_h5py; then
  corrupt_ckpt "$T/cs" short
  resume_every_rank ftst_ckpt_short "$T/cs" "$T/cs: no valid checkpoint to resume from (newest: $T/cs/$CK: /adamw/m has [0-9]* elements, this run needs"
  corrupt_ckpt "$T/cw" shape
  resume_every_rank ftst_ckpt_shape "$T/cw" "$T/cw: no valid checkpoint to resume from (newest: $T/cw/$CK: /adamw/v has 1 elements, this run needs"
  corrupt_ckpt "$T/cc" checksum
  resume_every_rank ftst_ckpt_checksum "$T/cc" "$T/cc: no valid checkpoint to resume from (newest: $T/cc/$CK: checkpoint is corrupt: /adamw/m fails its Fletcher32 checksum"
  # the control: the same copy unaltered resumes
  rm -rf "$T/cok"; mkdir -p "$T/cok"; cp "$T/s2/$CK" "$T/cok/"
  check ftst_ckpt_control mpi 2 "$I2PMAE" finetune $FT --epochs 3 -o "$T/cok" --resume --stages 2
else
  skip ftst_ckpt_corrupt "python3 h5py/numpy missing"
fi
