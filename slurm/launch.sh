# slurm/launch.sh -- sourced by the slurm/*.sbatch jobs (bash): finds the program, maps Slurm's
# allocation to MPI ranks and OpenMP threads, and starts the ranks. Not a job by itself.
#
# Provides:
#   i2p_setup          sets I2PMAE (the binary), OMP_NUM_THREADS, I2P_NTASKS; prints a header
#   i2p_launch NP ...  runs "$I2PMAE ..." on NP ranks with the chosen launcher; returns its status
#   i2p_opt NAME VAR   appends "--NAME $VAR" to the array I2P_ARGS when VAR is set and non-empty
#   i2p_launch_requeue NP CMD ...  i2p_launch with the preemption protocol (below)
#   i2p_wait_requeue PID CMD       that protocol for a launch already in the background
#
# Preemption: the jobs ask for `#SBATCH --signal=B:USR1@120` (SIGUSR1 to the job script 120 s
# before the time limit). The script passes it on as SIGUSR1 to the launcher (srun, mpirun), which
# passes it to the ranks; extract, pretrain, finetune and partseg then save their state at the
# next safe point and exit with status 75 (src/preempt.h), and the job requeues itself
# (`scontrol requeue`): the next start resumes. Other commands are left to the time limit.
# SIGTERM (scancel, the time limit itself) is not trapped: it ends the script as before, while
# the ranks, which get it too, save their state.
#
# Launcher (I2PMAE_LAUNCHER = auto | srun | mpirun, default auto):
#   srun   `srun --mpi=pmix`: Slurm starts the ranks itself. Debian's Open MPI 4.1 talks PMIx, and
#          Slurm 22.05's mpi/pmix plugin serves it; `--mpi=pmi2` does NOT work with Debian's Open MPI
#          ("OMPI was not built with SLURM's PMI support"), so pmix is the only srun mode.
#   mpirun Open MPI's mpirun inside the allocation: it reads the node list and slots from Slurm's
#          environment. Used where Slurm has no pmix plugin, or when asked.
#   auto   srun when `srun --mpi=list` offers pmix, mpirun otherwise.
# Threads: OMP_NUM_THREADS = --cpus-per-task (1 if unset). Ranks are not pinned (task/none here;
# mpirun gets --bind-to none) so each rank's OpenMP threads can use all of its CPUs.

i2p_die() { echo "i2pmae-job: error: $*" >&2; exit 2; }

i2p_setup() {
  # The repository: the directory above this file (the jobs find it as explained in their prelude).
  I2PMAE_HOME=${I2PMAE_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
  if [ -z "${I2PMAE:-}" ]; then
    if [ -x "$I2PMAE_HOME/build/i2pmae" ]; then I2PMAE=$I2PMAE_HOME/build/i2pmae
    elif command -v i2pmae > /dev/null; then I2PMAE=$(command -v i2pmae)
    else i2p_die "no i2pmae binary: build it (make all in $I2PMAE_HOME) or set I2PMAE=/path/to/i2pmae"
    fi
  fi
  [ -x "$I2PMAE" ] || i2p_die "I2PMAE=$I2PMAE is not an executable"
  export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-1}}
  I2P_NTASKS=${SLURM_NTASKS:-${I2PMAE_NP:-1}}
  I2P_LAUNCHER=${I2PMAE_LAUNCHER:-auto}
  if [ "$I2P_LAUNCHER" = auto ]; then
    if [ -n "${SLURM_JOB_ID:-}" ] && srun --mpi=list 2>&1 | grep -qw pmix; then I2P_LAUNCHER=srun
    else I2P_LAUNCHER=mpirun
    fi
  fi
  case $I2P_LAUNCHER in
    srun) [ -n "${SLURM_JOB_ID:-}" ] || i2p_die "I2PMAE_LAUNCHER=srun needs a Slurm allocation (sbatch/salloc)" ;;
    mpirun) command -v mpirun > /dev/null || i2p_die "mpirun not found (install openmpi-bin)" ;;
    *) i2p_die "I2PMAE_LAUNCHER='$I2P_LAUNCHER': use auto, srun or mpirun" ;;
  esac
  # Open MPI's mpirun refuses to run as root unless told; jobs of a root-run test cluster need it.
  if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
  I2P_ARGS=()
  echo "i2pmae-job: job ${SLURM_JOB_ID:-none} (${SLURM_JOB_NAME:-}) on ${SLURM_JOB_NODELIST:-$(hostname -s)}:" \
       "$I2P_NTASKS ranks x $OMP_NUM_THREADS threads, launcher $I2P_LAUNCHER," \
       "restart count ${SLURM_RESTART_COUNT:-0}, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
}

i2p_opt() {
  local v=${!2:-}
  if [ -n "$v" ]; then I2P_ARGS+=("--$1" "$v"); fi
}

i2p_launch() {
  local np=$1; shift
  echo "i2pmae-job: $I2P_LAUNCHER -n $np $I2PMAE $*"
  if [ "$I2P_LAUNCHER" = srun ]; then
    # srun does not inherit --cpus-per-task from sbatch since Slurm 22.05: pass it on.
    srun --mpi=pmix --ntasks="$np" --cpus-per-task="$OMP_NUM_THREADS" --kill-on-bad-exit=1 \
      "$I2PMAE" "$@"
  else
    # A session directory of its own: concurrent mpiruns of one user sharing /tmp/ompi.<host>.<uid>
    # race on its creation and removal ("orte_session_dir failed"; seen with parallel test runs).
    # I2PMAE_MPIRUN_ARGS: extra mpirun options (e.g. --oversubscribe outside an allocation).
    local sess rc
    sess=$(mktemp -d "${TMPDIR:-/tmp}/i2pmae-ompi.XXXXXX") || i2p_die "cannot create a directory in ${TMPDIR:-/tmp}"
    # shellcheck disable=SC2086
    OMPI_MCA_orte_tmpdir_base=$sess mpirun -np "$np" --bind-to none -x OMP_NUM_THREADS \
      ${I2PMAE_MPIRUN_ARGS:-} "$I2PMAE" "$@"
    rc=$?
    rm -rf "$sess"
    return $rc
  fi
}

# i2p_value NAME ARGS...: the value option NAME will take: the last --NAME V / --NAME=V (or -o V
# for output) in ARGS, else the key NAME of the [COMMAND] or global section of the --config file in
# ARGS (COMMAND = $I2P_COMMAND). Prints nothing if unset. Used to find a run directory before launch.
i2p_value() {
  local name=$1 v="" cfg="" prev=""; shift
  local a
  for a in "$@"; do
    case $prev in
      "--$name") v=$a ;;
      -o) [ "$name" = output ] && v=$a ;;
      --config) cfg=$a ;;
    esac
    case $a in
      "--$name="*) v=${a#--"$name"=} ;;
      --config=*) cfg=${a#--config=} ;;
    esac
    prev=$a
  done
  if [ -z "$v" ] && [ -n "$cfg" ] && [ -f "$cfg" ]; then
    v=$(awk -v key="$name" -v cmd="${I2P_COMMAND:-}" '
      { sub(/[;#].*/, "") }
      /^[ \t]*\[/ { gsub(/[][ \t]/, ""); sec = $0; next }
      (sec == "" || sec == cmd) && index($0, "=") {
        k = substr($0, 1, index($0, "=") - 1); val = substr($0, index($0, "=") + 1)
        gsub(/^[ \t]+|[ \t]+$/, "", k); gsub(/^[ \t]+|[ \t]+$/, "", val)
        if (k == key) found = val
      }
      END { if (found != "") print found }' "$cfg")
  fi
  echo "$v"
}

# i2p_forward_usr1 PID: SIGUSR1 to the launchers (srun, mpirun) below PID, which pass it on to the
# ranks (the shells in between would die of it).
i2p_forward_usr1() {
  local p
  for p in $(pgrep -P "$1"); do
    case $(ps -o comm= -p "$p" 2>/dev/null) in
      srun|mpirun|mpiexec|orterun|prterun) kill -USR1 "$p" 2>/dev/null ;;
      *) i2p_forward_usr1 "$p" ;;
    esac
  done
}

# i2p_requeue: `scontrol requeue` of this job, then exit 0 (the job starts again and resumes);
# returns 75 outside Slurm or when the requeue fails.
i2p_requeue() {
  if [ -n "${SLURM_JOB_ID:-}" ] && scontrol requeue "$SLURM_JOB_ID"; then
    echo "i2pmae-job: requeued job $SLURM_JOB_ID"
    exit 0
  fi
  return 75
}

# i2p_wait_requeue PID CMD: waits for PID (a launch of `i2pmae CMD` in the background) and returns
# its status. Meanwhile SIGUSR1 to this script is passed to the ranks when CMD
# stops on it (extract, pretrain, finetune, partseg); a status of 75 (state saved) then requeues the
# job (i2p_requeue) unless I2P_NO_REQUEUE is set.
i2p_wait_requeue() {
  I2P_LAUNCH_PID=$1 I2P_LAUNCH_CMD=$2
  local rc=
  case $I2P_LAUNCH_CMD in
    extract|pretrain|finetune|partseg)
      trap 'echo "i2pmae-job: preemption signal: $I2P_LAUNCH_CMD saves its state and stops"; i2p_forward_usr1 "$I2P_LAUNCH_PID"' USR1 ;;
    *) trap 'echo "i2pmae-job: preemption signal: ignored ($I2P_LAUNCH_CMD does not stop on it)"' USR1 ;;
  esac
  # `wait` returns early on a trapped signal: wait again for the real status
  while [ -z "$rc" ] || kill -0 "$I2P_LAUNCH_PID" 2> /dev/null; do wait "$I2P_LAUNCH_PID"; rc=$?; done
  trap - USR1
  if [ "$rc" = 75 ]; then
    echo "i2pmae-job: $I2P_LAUNCH_CMD saved its state and stopped (status 75)"
    [ -n "${I2P_NO_REQUEUE:-}" ] || i2p_requeue # I2P_NO_REQUEUE: the caller requeues
  fi
  return "$rc"
}

# i2p_launch_requeue NP CMD ARGS...: i2p_launch NP CMD ARGS... in the background, then
# i2p_wait_requeue; returns the command's status (or exits 0 once the job is requeued).
i2p_launch_requeue() {
  local what=$2
  # --eval-only (finetune, partseg) does not stop on a signal: left to the time limit
  printf '%s\n' "$@" | grep -qx -- --eval-only && what="$2 --eval-only"
  i2p_launch "$@" &
  i2p_wait_requeue $! "$what"
}
