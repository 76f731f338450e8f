# test_pretrain_stages.sh -- `i2pmae pretrain --stages S` (pipeline parallel, pipe_step.h) on the
# tiny network: loss.csv and the checkpoints' arrays are bitwise those of the data-parallel run
# with ranks / S ranks (S = 1, 2, 3 on 1-6 ranks; 1F1B and GPipe; balanced and hand-set splits;
# the overlapped reduction under stages with one or many buckets, and the single one; with
# --recompute at S = 3 and S = 2); the
# checkpoints, written by the stages in slices, are h5diff-equal; a run checkpointed at S = 2 on 2
# ranks resumes at S = 1 on 1 rank (and the reverse, and S = 1 -> 3, 4 ranks -> 4 ranks) with the
# same later losses and checkpoint; the SVM monitor gives the same accuracies; bad grids and splits give one error and
# every rank exits non-zero; a stage rank killed mid-step ends the job (no hang) and --resume
# finishes it with the uninterrupted losses.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer
if ! have_h5py; then skip pretrain_stages "python3 h5py/numpy missing (checkpoint comparison)"; exit 0; fi

train_data 48
need_features_file
P="--config $TINY --data $T/d.h5 --features $T/f.h5 --batch 8 --micro-batch 2 --checkpoint-every 4"

# same_run NAME DIR_A DIR_B STEP: loss.csv columns 1-6 (not samples/s) byte-equal and the
# checkpoint of STEP's datasets and attributes bitwise equal.
same_run() {
  cut -d, -f1-6 "$2/loss.csv" > "$T/cut.a"; cut -d, -f1-6 "$3/loss.csv" > "$T/cut.b"
  if ! [ -s "$T/cut.a" ] || ! cmp -s "$T/cut.a" "$T/cut.b"; then
    fail "$1" "loss.csv differs: $(diff "$T/cut.a" "$T/cut.b" | head -3 | tr '\n' ' ')"; return
  fi
  ck=$(printf 'ckpt-%08d.h5' "$4")
  if $PY - "$2/$ck" "$3/$ck" > "$T/ckcmp.out" 2>&1 <<'EOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], 'r'), h5py.File(sys.argv[2], 'r')
names = []
a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
other = []
b.visititems(lambda n, o: other.append(n) if isinstance(o, h5py.Dataset) else None)
assert sorted(names) == sorted(other), (names, other)
assert {'params', 'adamw/m', 'adamw/v', 'buffers'} <= set(names), names
for n in names:
    x, y = a[n][()], b[n][()]
    assert x.dtype == y.dtype and x.shape == y.shape, n
    assert x.tobytes() == y.tobytes(), 'dataset %s differs in %d entries' % (n, np.count_nonzero(x != y))
for k in a.attrs:
    assert str(a.attrs[k]) == str(b.attrs.get(k)), 'attribute ' + k
EOF
  then pass "$1"; else fail "$1" "$(tail -2 "$T/ckcmp.out" | tr '\n' ' ')"; fi
}

# ---- grid independence: one replica (S = 1, 2, 3) and two replicas (S = 1, 2) ----
check stages_s1_np1 mpi 1 "$I2PMAE" pretrain $P -o "$T/s1" --steps 8
check stages_s2_np2 mpi 2 "$I2PMAE" pretrain $P -o "$T/s2" --steps 8 --stages 2
check stages_s3_np3 mpi 3 "$I2PMAE" pretrain $P -o "$T/s3" --steps 8 --stages 3
check stages_s3_gpipe mpi 3 "$I2PMAE" pretrain $P -o "$T/s3g" --steps 8 --stages 3 --pipe-schedule gpipe \
  --stage-split 1,2,3
check stages_s2_split51 mpi 2 "$I2PMAE" pretrain $P -o "$T/s2h" --steps 8 --stages 2 --stage-split 5,1
same_run stages_s2_bitwise_s1 "$T/s1" "$T/s2" 8
same_run stages_s3_bitwise_s1 "$T/s1" "$T/s3" 8
same_run stages_s3_gpipe_bitwise_s1 "$T/s1" "$T/s3g" 8
same_run stages_s2_split51_bitwise_s1 "$T/s1" "$T/s2h" 8
# one micro-batch per step and one replica: the stages keep their gradients in the float array (no
# double accumulation, docs/pretrain.md "Stage memory"); the same bits as S = 1, also resumed there
check stages_m1_s1 mpi 1 "$I2PMAE" pretrain $P -o "$T/m1" --steps 8 --micro-batch 8
check stages_m1_s3 mpi 3 "$I2PMAE" pretrain $P -o "$T/m3" --steps 8 --micro-batch 8 --stages 3
cp "$T/check.out" "$T/m3.out"
check stages_m1_one_micro grep -q 'batch 8 = 1 micro-batches of 8 on 3 ranks' "$T/m3.out"
same_run stages_m1_s3_bitwise_s1 "$T/m1" "$T/m3" 8
check stages_m1_s3_first mpi 3 "$I2PMAE" pretrain $P -o "$T/m3g" --steps 4 --micro-batch 8 --stages 3
check stages_m1_s3_resume_s1 mpi 1 "$I2PMAE" pretrain $P -o "$T/m3g" --steps 8 --micro-batch 8 --resume
same_run stages_m1_grid_bitwise "$T/m1" "$T/m3g" 8
# --recompute under stages (blocks recomputed; embed0 keeps only its statistics and recomputes its
# activations in the stage's scratch arena before its backward): the same bits
check stages_s3_recompute mpi 3 "$I2PMAE" pretrain $P -o "$T/s3r" --steps 8 --stages 3 --recompute
check stages_s2_recompute_gpipe mpi 2 "$I2PMAE" pretrain $P -o "$T/s2r" --steps 8 --stages 2 --recompute \
  --stage-split 2,4 --pipe-schedule gpipe
same_run stages_s3_recompute_bitwise_s1 "$T/s1" "$T/s3r" 8
same_run stages_s2_recompute_bitwise_s1 "$T/s1" "$T/s2r" 8
check stages_d2_np2 mpi 2 "$I2PMAE" pretrain $P -o "$T/d2" --steps 8
check stages_d2_s2_np4 mpi 4 "$I2PMAE" pretrain $P -o "$T/d2s2" --steps 8 --stages 2 --stage-split 3,3
same_run stages_np4_s2_bitwise_np2_s1 "$T/d2" "$T/d2s2" 8
# the overlapped reduction under --stages (the default above, with 8 MiB buckets: one per stage):
# small buckets (many per stage, started unit by unit) and the single reduction give the same bits
check stages_np4_s2_buckets mpi 4 "$I2PMAE" pretrain $P -o "$T/d2s2b" --steps 8 --stages 2 --bucket-mb 0.02
cp "$T/check.out" "$T/d2s2b.out"
# the JSON says what ran: the overlap with 2 replicas, none with one (below) or when switched off
check stages_json_overlap_replicas grep -q '"overlap_allreduce":true,' "$T/d2s2b.out"
check stages_np4_s2_no_overlap mpi 4 "$I2PMAE" pretrain $P -o "$T/d2s2n" --steps 8 --stages 2 --overlap-allreduce 0
cp "$T/check.out" "$T/d2s2n.out"
check stages_json_overlap_off grep -q '"overlap_allreduce":false,' "$T/d2s2n.out"
same_run stages_np4_s2_buckets_bitwise "$T/d2" "$T/d2s2b" 8
same_run stages_np4_s2_no_overlap_bitwise "$T/d2" "$T/d2s2n" 8
check stages_np6_s3_buckets mpi 6 "$I2PMAE" pretrain $P -o "$T/d2s3" --steps 8 --stages 3 --bucket-mb 0.02
same_run stages_np6_s3_buckets_bitwise "$T/d2" "$T/d2s3" 8
mpi 3 "$I2PMAE" pretrain $P -o "$T/pr" --steps 1 --stages 3 > "$T/pr.out" 2>&1
check stages_split_logged grep -q 'pipeline of 3 stages x 1 replicas, 1f1b schedule; stage 0: embed0.*GFLOP/sample.*stage 2: ' "$T/pr.out"
check stages_json grep -q '"stages":3,"seconds_pipe_wait":' "$T/pr.out"
check stages_json_overlap_one_replica grep -q '"overlap_allreduce":false,' "$T/pr.out"

# ---- the SVM monitor measures the whole encoder: every stage's parameters gathered first ----
check stages_svm_data "$I2PMAE" synth --samples 96 --points 128 --seed 5 -o "$T/tr.h5"
check stages_svm_test "$I2PMAE" synth --samples 96 --points 128 --seed 6 -o "$T/te.h5"
M="--svm-every 1 --svm-data $T/tr.h5 --svm-test $T/te.h5 --epochs 2"
check stages_svm_s1 mpi 1 "$I2PMAE" pretrain $P $M -o "$T/sv1"
check stages_svm_s2 mpi 2 "$I2PMAE" pretrain $P $M -o "$T/sv2" --stages 2
check stages_svm_same_accuracy sh -c "cut -d, -f1-6,8 '$T/sv1/loss.csv' > '$T/sv1.c'; cut -d, -f1-6,8 '$T/sv2/loss.csv' > '$T/sv2.c'; [ \$(awk -F, 'NR > 1 && \$7 != \"\"' '$T/sv1.c' | wc -l) = 2 ] && cmp '$T/sv1.c' '$T/sv2.c'"

# ---- resume on another grid: checkpoint at S = 2 on 2 ranks, resumed at S = 1 on 1 rank ----
check stages_grid_first mpi 2 "$I2PMAE" pretrain $P -o "$T/g" --steps 4 --stages 2
check stages_grid_resume mpi 1 "$I2PMAE" pretrain $P -o "$T/g" --steps 8 --resume
same_run stages_grid_resume_same "$T/s1" "$T/g" 8
check stages_grid_back mpi 1 "$I2PMAE" pretrain $P -o "$T/g1" --steps 4
check stages_grid_resume_s3 mpi 3 "$I2PMAE" pretrain $P -o "$T/g1" --steps 8 --resume --stages 3
same_run stages_grid_resume_s3_same "$T/s1" "$T/g1" 8
check stages_grid_s1_first mpi 1 "$I2PMAE" pretrain $P -o "$T/g2" --steps 4
check stages_grid_resume_s2 mpi 2 "$I2PMAE" pretrain $P -o "$T/g2" --steps 8 --resume --stages 2
same_run stages_grid_resume_s2_same "$T/s1" "$T/g2" 8
# two replicas of two stages write their slices (replica 1 none), resumed with the single reduction
check stages_grid_np4_first mpi 4 "$I2PMAE" pretrain $P -o "$T/g4" --steps 4 --stages 2
check stages_grid_np4_resume mpi 4 "$I2PMAE" pretrain $P -o "$T/g4" --steps 8 --resume --stages 2 \
  --overlap-allreduce 0
same_run stages_grid_np4_resume_same "$T/d2" "$T/g4" 8
# the checkpoints written in slices are those of S = 1, byte for byte in every dataset (h5diff)
check stages_h5diff_s3 sh -c "[ -z \"\$(h5diff '$T/s1/ckpt-00000008.h5' '$T/s3/ckpt-00000008.h5' 2>&1)\" ]"
check stages_h5diff_np4 sh -c "[ -z \"\$(h5diff '$T/d2/ckpt-00000008.h5' '$T/d2s2/ckpt-00000008.h5' 2>&1)\" ]"

# ---- bad input: one error line, every rank exits non-zero ----
# every_rank NAME NP PATTERN ARGS...: expect_error under mpirun; then again with each rank wrapped
# so that it records its own exit status and exits 0 (mpirun kills the other ranks as soon as one
# exits non-zero, which would hide theirs): every rank's status must be non-zero.
every_rank() {
  n=$1; np=$2; pat=$3; shift 3
  expect_error "$n" "$pat" $MPIRUN "$np" "$I2PMAE" pretrain $P -o "$T/bad" --steps 2 "$@"
  rm -f "$T"/rc.*
  timeout 120 $MPIRUN "$np" sh -c '"$0" "$@" > /dev/null 2>&1; echo $? > "'"$T"'/rc.$OMPI_COMM_WORLD_RANK"' \
    "$I2PMAE" pretrain $P -o "$T/bad" --steps 2 "$@" > /dev/null 2>&1
  bad=0; cnt=0
  for f in "$T"/rc.*; do [ -f "$f" ] || continue; cnt=$((cnt + 1)); [ "$(cat "$f")" = 0 ] && bad=1; done
  if [ "$cnt" = "$np" ] && [ $bad = 0 ]; then pass "${n}_every_rank"; else fail "${n}_every_rank" "$cnt of $np rank statuses, a zero one: $bad"; fi
}
every_rank stages_more_than_units 2 "the network has only 6 pipeline units" --stages 7
every_rank stages_not_divisor 3 "world size 3 is not a multiple of --stages 2" --stages 2
every_rank stages_split_short 2 "--stage-split 2,3: 2 stages holding 5 units" --stages 2 --stage-split 2,3
every_rank stages_split_count 2 "--stage-split 1,2,3: 3 stages holding 6 units, but --stages is 2" --stages 2 \
  --stage-split 1,2,3
every_rank stages_split_syntax 2 "--stage-split 2,x: must be 2 positive unit counts" --stages 2 --stage-split 2,x
every_rank stages_schedule 2 "--pipe-schedule 2f2b: must be gpipe or 1f1b" --stages 2 --pipe-schedule 2f2b

# ---- a stage rank killed mid-step: the job ends, --resume finishes it ----
R="--steps 24 --keep 2 --stages 3" # 24 steps: the config's 4 epochs
check stages_uninterrupted mpi 1 "$I2PMAE" pretrain $P -o "$T/ref" --steps 24 --keep 2
$MPIRUN 3 "$I2PMAE" pretrain $P -o "$T/kill" $R > "$T/kill.out" 2>&1 &
mpid=$!
i=0
while [ $i -lt 3000 ] && ! grep -q '^5,' "$T/kill/loss.csv" 2> /dev/null; do sleep 0.02; i=$((i + 1)); done
ranks=$(pgrep -P $mpid)
victim=$(echo "$ranks" | sed -n 2p) # one rank of the three (a stage in the middle of a step)
[ -n "$victim" ] && kill -9 "$victim" 2> /dev/null
i=0
while kill -0 $mpid 2> /dev/null && [ $i -lt 1500 ]; do sleep 0.02; i=$((i + 1)); done
if kill -0 $mpid 2> /dev/null; then
  fail stages_killed_job_ends "mpirun still running 30 s after a rank was killed"
  kill -9 $mpid $ranks 2> /dev/null
else
  pass stages_killed_job_ends
fi
wait $mpid 2> /dev/null
for pid in $ranks; do j=0; while kill -0 "$pid" 2> /dev/null && [ $j -lt 600 ]; do sleep 0.05; j=$((j + 1)); done; done
if grep -q '^24,' "$T/kill/loss.csv" || [ -z "$victim" ]; then
  fail stages_killed_mid_run "the run finished before it was killed (ranks: '$ranks')"
else
  pass stages_killed_mid_run
fi
check stages_kill_resume mpi 3 "$I2PMAE" pretrain $P -o "$T/kill" $R --resume
same_run stages_kill_resume_same "$T/ref" "$T/kill" 24
