# test_slurm.sh -- the sbatch jobs on a real single-node Slurm that this test starts itself
# (slurm/local-cluster.sh, in its own state directory on a free port) and always stops.
#   cluster: start, idempotent start, a taken port refused, status, stop by PID
#   launch:  srun --mpi=pmix and mpirun inside an allocation (ranks, cpus-per-task -> threads), scancel
#   extract: slurm/extract.sbatch with `sbatch --wait` gives the same features as mpirun directly;
#            a submission cancelled mid-run with scancel and resubmitted resumes (skips done samples)
# Where Slurm daemons cannot run (not root, packages missing) every check is SKIP with the reason.
. "$(dirname "$0")/../lib.sh"

CLUSTER=$ROOT/slurm/local-cluster.sh
export I2PMAE_SLURM_DIR=$T/slurm
chmod 0755 "$T"   # munged (user munge) must reach its socket below $T
export I2PMAE_SLURM_TIMEOUT=20
export I2PMAE_HOME=$ROOT I2PMAE
LIMIT=90   # seconds any one Slurm job of this test may take

skip_all() {
  for n in cluster_start cluster_idempotent cluster_port_taken job_srun_pmix job_mpirun job_threads \
           job_scancel extract_sbatch_equals_mpirun extract_scancel_resume cluster_stop; do
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

# A free port pair (slurmctld, slurmd) so that this test never meets a cluster already running.
port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
PORT=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
  p=$(shuf -i 20000-59000 -n 1)
  if port_free "$p" && port_free $((p + 1)); then PORT=$p; break; fi
done
[ -n "$PORT" ] || skip_all "no free TCP port pair found"
export I2PMAE_SLURM_PORT=$PORT

cleanup() {
  timeout 120 "$CLUSTER" stop > "$T/stop.out" 2>&1
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# ---- cluster -------------------------------------------------------------------------------
if ! timeout 90 "$CLUSTER" start > "$T/start.out" 2>&1; then
  fail cluster_start "$(tail -n 5 "$T/start.out" | tr '\n' ' ')"
  for n in cluster_idempotent cluster_port_taken job_srun_pmix job_mpirun job_threads job_scancel \
           extract_sbatch_equals_mpirun extract_scancel_resume; do
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
gone=0
for _ in $(seq 1 100); do [ -z "$(squeue -h -j "$job" -o %T 2>/dev/null)" ] && { gone=1; break; }; sleep 0.2; done
if [ "$state" = RUNNING ] && [ $gone = 1 ]; then pass job_scancel
else fail job_scancel "job '$job' state '$state', gone after scancel: $gone"
fi

# ---- extract through slurm/extract.sbatch --------------------------------------------------
not_impl() { "$I2PMAE" "$1" --help 2>&1 | grep -q 'not implemented'; }
if not_impl synth || not_impl extract; then
  why="'i2pmae synth' or 'i2pmae extract' is not implemented yet in this build"
  skip extract_sbatch_equals_mpirun "$why"
  skip extract_scancel_resume "$why"
else
  fail extract_sbatch_equals_mpirun "not written yet"
fi

# ---- stop ----------------------------------------------------------------------------------
pids=$(cat "$T/slurm/munge/munged.pid" "$T/slurm/run/slurmctld.pid" "$T/slurm/run/slurmd.pid" 2>/dev/null)
timeout 120 "$CLUSTER" stop > "$T/stop.out" 2>&1
alive=""
for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
if [ -n "$pids" ] && [ -z "$alive" ] && ! "$CLUSTER" status > /dev/null 2>&1; then pass cluster_stop
else fail cluster_stop "pids '$pids', still alive '$alive': $(tr '\n' ' ' < "$T/stop.out")"
fi
