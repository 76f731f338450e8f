# test_slurm.sh -- the sbatch jobs on a real single-node Slurm that this test starts itself
# (slurm/local-cluster.sh, in its own state directory on a free port) and always stops.
#   cluster: start, idempotent start, a taken port refused, status, stop by PID
#   launch:  srun --mpi=pmix and mpirun inside an allocation (ranks, cpus-per-task -> threads), scancel
#   extract: slurm/extract.sbatch with `sbatch --wait` gives the same features as mpirun directly;
#            a submission cancelled mid-run with scancel and resubmitted resumes (skips done samples)
#   pretrain: slurm/pretrain.sbatch cancelled after a checkpoint, resubmitted: resumes from it;
#            a job whose --time is shorter than its work gets SIGUSR1 (--signal), checkpoints,
#            requeues itself and so completes by itself, with the results of an uninterrupted run;
#            so does one whose SIGUSR1 comes before its ranks run (kept, passed on once they do)
# Where Slurm daemons cannot run (not root, packages missing) every check is SKIP with the reason.
. "$(dirname "$0")/../lib.sh"

CLUSTER=$ROOT/slurm/local-cluster.sh
export I2PMAE_SLURM_DIR=$T/slurm
chmod 0755 "$T"   # munged (user munge) must reach its socket below $T
export I2PMAE_SLURM_TIMEOUT=20
export I2PMAE_HOME=$ROOT I2PMAE
LIMIT=240  # seconds any one Slurm job of this test may take (a hang guard: 200 samples of extract
           # take 40 s on an idle 2-core machine, over 130 s with 4 busy loops beside it)

skip_all() {
  for n in cluster_start cluster_idempotent cluster_port_taken job_srun_pmix job_mpirun job_threads \
           job_scancel job_scaling_study extract_sbatch_equals_mpirun extract_scancel_resume \
           pretrain_scancel_resume pretrain_requeued_by_itself pretrain_signal_before_ranks cluster_stop; do
    skip "$n" "$1"
  done
  exit 0
}

[ "$(id -u)" = 0 ] || skip_all "not root: slurmd must run as root"
for t in munged slurmctld slurmd sbatch srun scancel squeue; do
  command -v "$t" > /dev/null || [ -x "/usr/sbin/$t" ] ||
    skip_all "'$t' not installed (Debian packages slurm-wlm and munge; see tests/deps.sh)"
done
[ -d /proc/1 ] || skip_all "no /proc: Slurm's process tracking cannot work"
[ "$(nproc)" -ge 2 ] || skip_all "the 2-rank jobs need 2 CPUs; this machine has $(nproc)"

# A free port pair (slurmctld, slurmd) so that this test never meets a cluster already running.
# Taken below the kernel's ephemeral range, where outgoing connections could grab it meanwhile.
PORT=$(pick_port) || skip_all "no free TCP port pair found"
export I2PMAE_SLURM_PORT=$PORT

cleanup() {
  timeout 120 "$CLUSTER" stop > "$T/stop.out" 2>&1
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- cluster -------------------------------------------------------------------------------
# start; if the port pair was taken between the check and the bind, once more on another pair.
started=0
for _ in 1 2; do
  if timeout 90 "$CLUSTER" start > "$T/start.out" 2>&1; then started=1; break; fi
  grep -q 'Address already in use\|already in use' "$T/start.out" || break
  PORT=$(pick_port) || break
  export I2PMAE_SLURM_PORT=$PORT
done
if [ $started = 0 ]; then
  fail cluster_start "$(tail -n 5 "$T/start.out" | tr '\n' ' ')"
  for n in cluster_idempotent cluster_port_taken job_srun_pmix job_mpirun job_threads job_scancel job_scaling_study \
           extract_sbatch_equals_mpirun extract_scancel_resume pretrain_scancel_resume pretrain_requeued_by_itself \
           pretrain_signal_before_ranks; do
    skip "$n" "the local cluster did not start"
  done
  exit 1
fi
eval "$("$CLUSTER" env)"
if "$CLUSTER" status > "$T/status.out" 2>&1 && grep -q 'node: .* idle' "$T/status.out"; then
  pass cluster_start
else
  fail cluster_start "status after start: $(tr '\n' ' ' < "$T/status.out")"
fi

pids1=$(cat "$T/slurm/munge/munged.pid" "$T/slurm/run/slurmctld.pid" "$T/slurm/run/slurmd.pid" 2>/dev/null)
timeout 60 "$CLUSTER" start > "$T/start2.out" 2>&1
pids2=$(cat "$T/slurm/munge/munged.pid" "$T/slurm/run/slurmctld.pid" "$T/slurm/run/slurmd.pid" 2>/dev/null)
if grep -q 'already running' "$T/start2.out" && [ "$pids1" = "$pids2" ]; then pass cluster_idempotent
else fail cluster_idempotent "second start: $(tr '\n' ' ' < "$T/start2.out"), pids '$pids1' -> '$pids2'"
fi

# A second cluster on the same port must refuse clearly and leave nothing running.
I2PMAE_SLURM_DIR=$T/slurm2 timeout 60 "$CLUSTER" start > "$T/taken.out" 2>&1
rc=$?
if [ $rc != 0 ] && grep -q "port $PORT .*already in use" "$T/taken.out" &&
   ! I2PMAE_SLURM_DIR=$T/slurm2 "$CLUSTER" status 2>&1 | grep -q 'running (pid'; then
  pass cluster_port_taken
else
  fail cluster_port_taken "exit $rc: $(tr '\n' ' ' < "$T/taken.out")"
fi
I2PMAE_SLURM_DIR=$T/slurm2 "$CLUSTER" stop > /dev/null 2>&1

# ---- launching inside an allocation --------------------------------------------------------
# A job that launches through slurm/launch.sh, as the real jobs do, a program that prints what
# each rank sees.
cat > "$T/probe.sbatch" <<EOF
#!/bin/bash
. "$ROOT/slurm/launch.sh"
I2PMAE=/usr/bin/env
i2p_setup
i2p_launch "\$I2P_NTASKS" sh -c 'echo "probe rank=\${OMPI_COMM_WORLD_RANK:-\$PMIX_RANK} threads=\$OMP_NUM_THREADS"'
I2PMAE=$I2PMAE
i2p_launch "\$I2P_NTASKS" --version
EOF

# run_job NAME SBATCH_ARGS...: sbatch --wait with a time limit; output in $T/NAME.out
run_job() {
  n=$1; shift
  timeout $LIMIT sbatch --wait --quiet -o "$T/$n.out" "$@" > "$T/$n.sbatch" 2>&1
}

# wait_gone JOB: true once JOB has left the queue (30 s limit).
wait_gone() {
  for _ in $(seq 1 150); do [ -z "$(squeue -h -j "$1" -o %T 2>/dev/null)" ] && return 0; sleep 0.2; done
  return 1
}

# probe_ok FILE RANKS THREADS LAUNCHER
probe_ok() {
  [ "$(grep -c '^probe rank=[0-9] threads='"$3"'$' "$1")" = "$2" ] &&
  [ "$(grep -c '^i2pmae [0-9]' "$1")" = 1 ] && grep -q "launcher $4" "$1"   # --version: rank 0 only
}

if run_job srun -n 2 -c 1 --export=ALL,I2PMAE_LAUNCHER=srun "$T/probe.sbatch" && probe_ok "$T/srun.out" 2 1 srun; then
  pass job_srun_pmix
else
  fail job_srun_pmix "$(cat "$T/srun.sbatch" "$T/srun.out" 2>/dev/null | tail -n 6 | tr '\n' ' ')"
fi
if run_job mpirun -n 2 -c 1 --export=ALL,I2PMAE_LAUNCHER=mpirun "$T/probe.sbatch" && probe_ok "$T/mpirun.out" 2 1 mpirun; then
  pass job_mpirun
else
  fail job_mpirun "$(cat "$T/mpirun.sbatch" "$T/mpirun.out" 2>/dev/null | tail -n 6 | tr '\n' ' ')"
fi
# --cpus-per-task=2 must reach the ranks as OMP_NUM_THREADS=2 (auto launcher: srun here).
if run_job threads -n 1 -c 2 "$T/probe.sbatch" && probe_ok "$T/threads.out" 1 2 srun; then
  pass job_threads
else
  fail job_threads "$(cat "$T/threads.sbatch" "$T/threads.out" 2>/dev/null | tail -n 6 | tr '\n' ' ')"
fi

# scancel of a running job: it must leave the queue within the time limit.
job=$(sbatch --parsable -n 1 -o /dev/null --wrap 'sleep 300' 2>&1)
state=""
for _ in $(seq 1 50); do state=$(squeue -h -j "$job" -o %T 2>/dev/null); [ "$state" = RUNNING ] && break; sleep 0.2; done
scancel "$job"
if [ "$state" != RUNNING ]; then fail job_scancel "job '$job' never ran (state '$state')"
elif wait_gone "$job"; then pass job_scancel
else fail job_scancel "job $job still listed 30 s after scancel"
fi

# ---- the scaling study job: driver, CSV and plots. A stand-in program prints the JSON line, so
# this checks the job's mechanics in seconds; real figures come from `make bench`. ------------
cat > "$T/fake-i2pmae" <<'EOF'
#!/bin/sh
cmd=$1; shift; out=""
while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift;; esac; shift; done
case $cmd in
  synth) : > "$out" ;;
  extract) [ "${PMIX_RANK:-${OMPI_COMM_WORLD_RANK:-0}}" = 0 ] || exit 0
    s=$(awk -v n="${SLURM_STEP_NUM_TASKS:-${OMPI_COMM_WORLD_SIZE:-1}}" 'BEGIN { printf "%.3f", 2 / n }')
    echo "{\"command\":\"extract\",\"samples\":8,\"seconds\":$s,\"per_rank\":[{\"compute_s\":1.2,\"comm_s\":0.5,\"idle_s\":0,\"io_s\":0.1},{\"compute_s\":0.8,\"comm_s\":0.5,\"idle_s\":0,\"io_s\":0.1}]}" ;;
esac
EOF
chmod +x "$T/fake-i2pmae"
printf '[scaling]\ncommand = extract\nmodes = strong\nranks = 1 2\nstages = 1\nsamples = 8\nout = %s\n' \
  "$T/scaling" > "$T/scaling.ini"
if run_job scaling -n 2 --export=ALL,I2PMAE="$T/fake-i2pmae" "$ROOT/slurm/scaling.sbatch" "$T/scaling.ini" &&
   [ "$(grep -c ',extract,strong,' "$T/scaling/extract.csv" 2>/dev/null)" = 2 ] &&
   grep -q ',extract,strong,2,1,1,8,1.0000,8.0000,2.0000,1.0000,1.0000,0.5000,0.0000,0.1000,srun,' "$T/scaling/extract.csv" &&
   [ -s "$T/scaling/extract-strong-speedup.png" ] && [ -s "$T/scaling/extract-strong-efficiency.png" ] &&
   [ -s "$T/scaling/extract-strong-breakdown.png" ]; then
  pass job_scaling_study
else
  fail job_scaling_study "$(cat "$T/scaling.sbatch" "$T/scaling.out" "$T/scaling/extract.csv" 2>/dev/null | tail -n 6 | tr '\n' ' ')"
fi

# ---- extract through slurm/extract.sbatch --------------------------------------------------
# same_features A B: every dataset of two features files is equal (h5diff per dataset: the root
# attributes legitimately differ, e.g. the output name inside the stored configuration).
same_features() {
  sets=$(h5ls "$1" 2>/dev/null | awk '$2 == "Dataset" { print $1 }')
  [ -n "$sets" ] || { echo "no datasets in $1"; return 1; }
  for d in $sets; do
    h5diff -q "$1" "$2" "/$d" > "$T/h5diff.out" 2>&1 ||
      { echo "/$d differs: $(head -c 300 "$T/h5diff.out" | tr '\n' ' ')"; return 1; }
  done
}

extract_checks() {
  N=200; FLUSH=4   # enough tiny samples that the job is still running when it is cancelled
  export I2PMAE_PROGRESS_S=0.1   # progress lines often enough to cancel after the first flushes
  if ! "$I2PMAE" synth --samples $N --points 256 --seed 3 -o "$T/data.h5" > "$T/synth.out" 2>&1; then
    fail extract_sbatch_equals_mpirun "synth failed: $(tail -n 2 "$T/synth.out" | tr '\n' ' ')"
    skip extract_scancel_resume "no input data (synth failed)"
    return
  fi
  set -- --input "$T/data.h5" --vit random:tiny --batch 2 --flush $FLUSH
  if ! timeout $LIMIT mpirun -np 2 --oversubscribe --bind-to none "$I2PMAE" extract "$@" -o "$T/ref.h5" \
       > "$T/ref.out" 2>&1; then
    fail extract_sbatch_equals_mpirun "reference run with mpirun failed: $(tail -n 3 "$T/ref.out" | tr '\n' ' ')"
    skip extract_scancel_resume "no reference features (mpirun run failed)"
    return
  fi

  # 1. sbatch --wait, inputs through the environment and the command line together.
  if run_job ex1 -n 2 --export=ALL,I2PMAE_INPUT="$T/data.h5",I2PMAE_VIT=random:tiny,I2PMAE_OUTPUT="$T/slurm.h5" \
       "$ROOT/slurm/extract.sbatch" --batch 2 --flush $FLUSH; then
    if why=$(same_features "$T/ref.h5" "$T/slurm.h5"); then pass extract_sbatch_equals_mpirun
    else fail extract_sbatch_equals_mpirun "$why"
    fi
  else
    fail extract_sbatch_equals_mpirun "job failed: $(cat "$T/ex1.sbatch" "$T/ex1.out" 2>/dev/null | tail -n 4 | tr '\n' ' ')"
  fi

  # 2. Cancel a submission once some flushes are on disk, resubmit the same job: it resumes.
  # The cancelled one runs on 1 rank with progress lines every 0.2 s, so that it is caught early
  # even on a fast machine; the resubmission runs on 2 (extract may change the grid on resume).
  job=$(sbatch --parsable -n 1 --export=ALL,I2PMAE_PROGRESS_S=0.2 -o "$T/ex2.out" \
        "$ROOT/slurm/extract.sbatch" "$@" -o "$T/cancel.h5" 2>&1)
  seen=""
  for _ in $(seq 1 600); do
    seen=$(sed -n "s|.* \([0-9]*\)/$N samples.*|\1|p" "$T/ex2.out" 2>/dev/null | tail -n 1)
    [ -n "$seen" ] && [ "$seen" -ge $((2 * FLUSH)) ] && break
    [ -z "$(squeue -h -j "$job" -o %T 2>/dev/null)" ] && break
    sleep 0.1
  done
  scancel "$job" 2>/dev/null
  if ! wait_gone "$job"; then fail extract_scancel_resume "job $job still listed 30 s after scancel"; return; fi
  if [ -e "$T/cancel.h5" ] || [ ! -e "$T/cancel.h5.partial" ]; then
    fail extract_scancel_resume "after scancel (progress '$seen'/$N): want only cancel.h5.partial, have: $(ls "$T" | grep cancel | tr '\n' ' ')"
    return
  fi
  run_job ex3 -n 2 "$ROOT/slurm/extract.sbatch" "$@" -o "$T/cancel.h5"
  rc=$?
  skipped=$(grep -o '"skipped": *[0-9]*' "$T/ex3.out" 2>/dev/null | tail -n 1 | tr -dc 0-9)
  if [ $rc != 0 ]; then
    fail extract_scancel_resume "resubmitted job failed: $(tail -n 4 "$T/ex3.out" | tr '\n' ' ')"
  elif [ -z "$skipped" ] || [ "$skipped" -le 0 ] || [ "$skipped" -ge $N ]; then
    fail extract_scancel_resume "resubmitted job skipped '$skipped' of $N samples (want 0 < skipped < $N)"
  elif [ -e "$T/cancel.h5.partial" ]; then
    fail extract_scancel_resume "cancel.h5.partial left after the resumed job"
  elif ! why=$(same_features "$T/ref.h5" "$T/cancel.h5"); then
    fail extract_scancel_resume "resumed result differs from the uninterrupted run: $why"
  else
    pass extract_scancel_resume
    echo "    (cancelled at $seen/$N samples; the resubmitted job skipped $skipped)"
  fi
}

# slurm/pretrain.sbatch: cancelled once a checkpoint is on disk, the same submission again adds
# --resume by itself and continues from that checkpoint. Uses extract's data and features.
pretrain_checks() {
  set -- --data "$T/data.h5" --features "$T/ref.h5" -o "$T/run" --steps 40 --checkpoint-every 10 \
    --batch 8 --micro-batch 4 --log-every 10 --points 256 --groups 64,32,8 --k 16,8,8 --dims 32,64,128 \
    --depths 1,1,1 --heads 4 --dec-dims 128,64 --dec-depths 1,1 --embed-hidden 32,64,128   # the demo's network
  job=$(sbatch --parsable -n 2 -o "$T/pt1.out" "$ROOT/slurm/pretrain.sbatch" "$@" 2>&1)
  for _ in $(seq 1 300); do
    ls "$T"/run/ckpt-*.h5 > /dev/null 2>&1 && break
    [ -z "$(squeue -h -j "$job" -o %T 2>/dev/null)" ] && break
    sleep 0.2
  done
  scancel "$job" 2>/dev/null
  wait_gone "$job" || { fail pretrain_scancel_resume "job $job still listed 30 s after scancel"; return; }
  first=$(ls "$T"/run/ckpt-*.h5 2>/dev/null | head -n 1)
  if [ -z "$first" ]; then
    fail pretrain_scancel_resume "no checkpoint before the cancel: $(tail -n 3 "$T/pt1.out" | tr '\n' ' ')"; return
  fi
  run_job pt2 -n 2 "$ROOT/slurm/pretrain.sbatch" "$@"
  rc=$?
  start=$(grep -o '"start_step": *[0-9]*' "$T/pt2.out" 2>/dev/null | tail -n 1 | tr -dc 0-9)
  end=$(grep -o '"end_step": *[0-9]*' "$T/pt2.out" 2>/dev/null | tail -n 1 | tr -dc 0-9)
  if [ $rc = 0 ] && grep -q 'resuming (--resume)' "$T/pt2.out" && [ -n "$start" ] && [ "$start" -gt 0 ] &&
     [ "$end" = 40 ]; then
    pass pretrain_scancel_resume
    echo "    (cancelled after $(basename "$first"); the resubmitted job ran steps $start -> $end)"
  else
    fail pretrain_scancel_resume "status $rc, steps '$start' -> '$end': $(tail -n 4 "$T/pt2.out" | tr '\n' ' ')"
  fi
}

# same_run REF RUN STEPS: empty when $T/RUN, which ran STEPS steps, holds the loss.csv lines (step,
# epoch, losses, lr) of the uninterrupted $T/REF up to STEPS and REF's checkpoint at STEPS; else why not.
same_run() {
  final="ckpt-$(printf %08d "$3").h5"
  cut -d, -f1-6 "$T/$1/loss.csv" | awk -F, -v n="$3" 'NR == 1 || $1 <= n' > "$T/$1.$3.loss"
  cut -d, -f1-6 "$T/$2/loss.csv" > "$T/$2.loss" 2>/dev/null
  [ "$(wc -l < "$T/$2.loss")" -gt 1 ] || { echo "no loss lines in $2/loss.csv"; return; }
  if ! cmp -s "$T/$1.$3.loss" "$T/$2.loss"; then echo "loss.csv differs (step, epoch, losses, lr)"; return; fi
  [ -s "$T/$1/$final" ] || { echo "the reference has no $final"; return; }
  [ -s "$T/$2/$final" ] || { echo "no $final"; return; }
  for d in $(h5ls -r "$T/$1/$final" 2>/dev/null | awk '$2 == "Dataset" { print $1 }'); do
    h5diff -q "$T/$1/$final" "$T/$2/$final" "$d" > /dev/null 2>&1 || { echo "$final: $d differs"; return; }
  done
}

# slurm/pretrain.sbatch with --time shorter than the work: Slurm's minimum --time is 1 minute, so
# the job asks for SIGUSR1 55 s before it (--signal=B:USR1@55: slurmctld, which looks at time
# limits every 30 s, sends it 5 to 35 s after the start). The job passes it to the ranks,
# pretrain checkpoints and exits 75, the job requeues itself; the local cluster lets a requeued
# job start again after 10 s (cred_expire in slurm/local-cluster.sh). The work is sized from a
# short calibration run's steady rate to about 45 s, more than the 35 s a first signal can take,
# so at least one requeue is sure (sized from an average that counted the first steps, it once took
# 27 s and ended before the signal; at 55 s the check took 130-190 s with 2-4 requeues); the
# finished job must hold the losses and final checkpoint of an uninterrupted run (mpirun, same steps).
requeue_checks() {
  NET="--points 256 --groups 64,32,8 --k 16,8,8 --dims 32,64,128 --depths 1,1,1 --heads 4 --dec-dims 128,64
    --dec-depths 1,1 --embed-hidden 32,64,128"
  set -- --data "$T/data.h5" --features "$T/ref.h5" --batch 8 --micro-batch 4 --log-every 10 $NET
  export OMP_NUM_THREADS=1 # as in the job (--cpus-per-task=1): the same bits
  timeout 300 mpirun -np 2 --oversubscribe --bind-to none "$I2PMAE" pretrain "$@" -o "$T/calib" --steps 30 \
    > "$T/calib.out" 2>&1
  # seconds per step in the steady state: the batch (8) over the rate of the progress line of steps 21-30
  # (the first steps' primitive creation and first touches made a 10-step average 2-2.5x too long, so
  # the work could end before the signal came)
  secs=$(grep 'pretrain: step 30/30 ' "$T/calib.out" | tail -n 1 |
    awk '{ for (i = 2; i <= NF; i++) if ($i == "samples/s") r = $(i - 1) } END { printf "%.4f", (r > 0 ? 8 / r : 0) }')
  steps=$(awk -v s="$secs" 'BEGIN { n = s > 0 ? int(45 / s / 10) * 10 : 0; print (n < 30 ? 30 : (n > 8000 ? 8000 : n)) }')
  # The second job below needs only the signal to come before its end: a third of the work.
  early_steps=$(( steps / 30 * 10 )); [ "$early_steps" -ge 10 ] || early_steps=10
  set -- "$@" --epochs $(( steps / 25 + 1 ))
  # The reference also writes a checkpoint at early_steps: the state the second job must end with
  # (a checkpoint changes nothing in a run; e2e_pretrain checks that resumed runs are exact).
  if ! timeout 600 mpirun -np 2 --oversubscribe --bind-to none "$I2PMAE" pretrain "$@" --steps "$steps" \
       --checkpoint-every "$early_steps" --keep 10 -o "$T/rq_ref" > "$T/rq_ref.out" 2>&1; then
    fail pretrain_requeued_by_itself "uninterrupted run failed: $(tail -n 3 "$T/rq_ref.out" | tr '\n' ' ')"; return
  fi
  job=$(sbatch --parsable -n 2 --time=1 --signal=B:USR1@55 -o "$T/rq.out" "$ROOT/slurm/pretrain.sbatch" "$@" \
        --steps "$steps" --checkpoint-every 1000000 -o "$T/rq" 2>&1)
  for _ in $(seq 1 900); do [ -z "$(squeue -h -j "$job" -o %T 2>/dev/null)" ] && break; sleep 1; done
  requeues=$(grep -c "requeued job $job" "$T/rq.out" 2>/dev/null)
  why=""
  if [ -n "$(squeue -h -j "$job" -o %T 2>/dev/null)" ]; then scancel "$job"; why="job $job still queued after 900 s"
  elif ! tail -n 3 "$T/rq.out" | grep -q 'pretrain exited with status 0'; then why="did not end with status 0"
  elif [ "$requeues" -lt 1 ]; then why="never requeued ($steps steps: the calibration said $secs s per step)"
  else why=$(same_run rq_ref rq "$steps")
  fi
  if [ -z "$why" ]; then
    pass pretrain_requeued_by_itself
    echo "    ($steps steps, $requeues requeues: $(grep -c 'stopped by signal' "$T/rq.out") stops ($(grep -c 'passed to the ranks once they ran' "$T/rq.out") signals held until the ranks ran), $(grep -o '"seconds":[0-9.]*' "$T/rq_ref.out" | tail -n 1) uninterrupted)"
  else
    fail pretrain_requeued_by_itself "$why: $(grep 'i2pmae-job\|error' "$T/rq.out" | tail -n 6 | tr '\n' ' ')"
  fi

  # The same job, its SIGUSR1 sent before its ranks run: right after the script's header line
  # (scancel --signal=USR1 --batch), while srun starts ranks that take 3 s to become i2pmae (a
  # wrapper that sleeps, then execs it: a slow start on a loaded node). A signal passed on then
  # would kill them, and one srun gets before its tasks start is dropped: the script must keep
  # it, pass it on once they run, and requeue; the result is again the uninterrupted run's (its
  # checkpoint at early_steps: this job runs a third of the work, enough to end after the signal).
  printf '#!/bin/sh\nsleep 3\nexec "%s" "$@"\n' "$I2PMAE" > "$T/slow-i2pmae"
  chmod +x "$T/slow-i2pmae"
  job=$(sbatch --parsable -n 2 --time=10 -o "$T/early.out" --export=ALL,I2PMAE="$T/slow-i2pmae" \
        "$ROOT/slurm/pretrain.sbatch" "$@" --steps "$early_steps" --checkpoint-every 1000000 -o "$T/early" 2>&1)
  sent=""
  for _ in $(seq 1 600); do
    if grep -q 'launcher srun' "$T/early.out" 2>/dev/null; then
      scancel --signal=USR1 --batch "$job" 2>/dev/null && sent=1; break
    fi
    [ -z "$(squeue -h -j "$job" -o %T 2>/dev/null)" ] && break
    sleep 0.1
  done
  for _ in $(seq 1 900); do [ -z "$(squeue -h -j "$job" -o %T 2>/dev/null)" ] && break; sleep 1; done
  why=""
  if [ -n "$(squeue -h -j "$job" -o %T 2>/dev/null)" ]; then scancel "$job"; why="job $job still queued after 900 s"
  elif [ -z "$sent" ]; then why="no header line to send the signal after (or scancel failed)"
  elif ! tail -n 3 "$T/early.out" | grep -q 'pretrain exited with status 0'; then why="did not end with status 0"
  elif ! grep -q 'preemption signal passed to the ranks once they ran' "$T/early.out"; then
    why="the signal was not held until the ranks ran"
  elif [ "$(grep -c "requeued job $job" "$T/early.out")" != 1 ] || ! grep -q 'resuming (--resume)' "$T/early.out"; then
    why="want one requeue and a resume, have $(grep -c "requeued job $job" "$T/early.out") requeues"
  else why=$(same_run rq_ref early "$early_steps")
  fi
  if [ -z "$why" ]; then
    pass pretrain_signal_before_ranks
    echo "    ($(grep -o 'passed to the ranks once they ran ([0-9]* s after it came)' "$T/early.out" | head -n 1); resumed from $(grep -o 'steps [0-9]* -> [0-9]* (resumed)' "$T/early.out" | head -n 1))"
  else
    fail pretrain_signal_before_ranks "$why: $(grep 'i2pmae-job\|error' "$T/early.out" | tail -n 6 | tr '\n' ' ')"
  fi
}

extract_checks
if [ ! -s "$T/ref.h5" ]; then
  skip pretrain_scancel_resume "no features file (the extract checks failed)"
  skip pretrain_requeued_by_itself "no features file (the extract checks failed)"
  skip pretrain_signal_before_ranks "no features file (the extract checks failed)"
else
  pretrain_checks
  requeue_checks
fi

# ---- stop ----------------------------------------------------------------------------------
pids=$(cat "$T/slurm/munge/munged.pid" "$T/slurm/run/slurmctld.pid" "$T/slurm/run/slurmd.pid" 2>/dev/null)
timeout 120 "$CLUSTER" stop > "$T/stop.out" 2>&1
alive=""
for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
if [ -n "$pids" ] && [ -z "$alive" ] && ! "$CLUSTER" status > /dev/null 2>&1; then pass cluster_stop
else fail cluster_stop "pids '$pids', still alive '$alive': $(tr '\n' ' ' < "$T/stop.out")"
fi
