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
# before the time limit). The script records it (a trap from its first line on) and passes it on,
# once, as SIGUSR1 to the launcher (srun, mpirun) as soon as the ranks can take it: at once while
# they run, or when they have started if it came earlier (set-up, srun still starting them). The
# launcher passes it to the ranks; extract, pretrain, finetune and partseg then save their state at
# the next safe point and exit with status 75 (src/preempt.h), and the job requeues itself
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

# i2p_launcher_pids PID: the launchers (srun, mpirun) below PID. A SIGUSR1 goes to them only (the
# shells in between would die of it); they pass it on to the ranks.
i2p_launcher_pids() {
  local p
  for p in $(pgrep -P "$1"); do
    case $(ps -o comm= -p "$p" 2>/dev/null) in
      srun|mpirun|mpiexec|orterun|prterun) echo "$p" ;;
      *) i2p_launcher_pids "$p" ;;
    esac
  done
}

# i2p_descendants PID: every process below PID.
i2p_descendants() {
  local p
  for p in $(pgrep -P "$1"); do echo "$p"; i2p_descendants "$p"; done
}

# i2p_takes_usr1 PID: true when a SIGUSR1 no longer kills process PID: it has a handler for it,
# ignores it or blocks it (bit 10 of SigCgt, SigIgn or SigBlk in /proc/PID/status). i2pmae installs
# its handler before MPI_Init and holds the signal until its first safe point; srun blocks it and
# takes it in a thread of its own. Before that, a SIGUSR1 kills the process.
i2p_takes_usr1() {
  local k m
  while read -r k m; do
    case $k in SigCgt:|SigIgn:|SigBlk:) (( 0x$m & 0x200 )) && return 0 ;; esac
  done < "/proc/$1/status"
  return 1
}

# i2p_local_count NP: how many of NP ranks run on this node (the job's first, where the script
# runs): the first count of SLURM_TASKS_PER_NODE ("2(x3),1" -> 2), at most NP; NP outside Slurm.
i2p_local_count() {
  local n=${SLURM_TASKS_PER_NODE:-$1}
  n=${n%%[(,]*}
  case $n in ''|*[!0-9]*) n=$1 ;; esac
  if [ "$n" -lt "$1" ]; then echo "$n"; else echo "$1"; fi
}

# i2p_ranks_ready PID NP: true when the launch PID (NP ranks) can take a SIGUSR1: its launcher
# takes it (i2p_takes_usr1), and so do this node's share of the ranks, each already the program
# (named like $I2PMAE or i2pmae, not a launcher's child before its exec). srun's tasks are found
# with `scontrol listpids` (they are not below the script), mpirun's below mpirun. Ranks on other
# nodes start together with these (srun drops a signal for tasks it has not started yet, and a
# rank still starting would die of it: hence the wait).
i2p_ranks_ready() {
  local l p name n=0 ranks
  l=$(i2p_launcher_pids "$1")
  [ -n "$l" ] || return 1
  for p in $l; do i2p_takes_usr1 "$p" || return 1; done
  if [ -n "${SLURM_JOB_ID:-}" ] && [ "$I2P_LAUNCHER" = srun ]; then
    ranks=$(scontrol listpids "$SLURM_JOB_ID" 2> /dev/null | awk '$3 != "batch" && $4 ~ /^[0-9]+$/ { print $1 }')
  else
    ranks=$(for p in $l; do i2p_descendants "$p"; done)
  fi
  name=$(basename "$I2PMAE"); name=${name:0:15}   # /proc/PID/comm holds 15 characters
  for p in $ranks; do
    case $(cat "/proc/$p/comm" 2> /dev/null) in
      "$name"|i2pmae) i2p_takes_usr1 "$p" || return 1; n=$((n + 1)) ;;
      *) [ "$I2P_LAUNCHER" = srun ] && return 1 ;;   # a task not yet started
    esac
  done
  [ "$n" -ge "$(i2p_local_count "$2")" ]
}

# i2p_forward_usr1 PID: SIGUSR1 to the launchers below PID, which pass it on to the ranks.
i2p_forward_usr1() {
  local p
  for p in $(i2p_launcher_pids "$1"); do kill -USR1 "$p" 2> /dev/null; done
}

# i2p_alive PID: true while process PID runs (neither gone nor a zombie).
i2p_alive() {
  local s
  s=$(cat "/proc/$1/stat" 2> /dev/null) || return 1
  s=${s##*) }
  [ -n "$s" ] && [ "${s%% *}" != Z ]
}

# A preemption request: the time SIGUSR1 came ($SECONDS), empty while none came. The jobs set this
# trap on their first line, so that a signal that comes before the launch (during set-up, or while
# srun is still starting the ranks) is kept, not lost, nor fatal to the script.
i2p_usr1_came() { I2P_USR1=${I2P_USR1:-$SECONDS} I2P_TRAPPED=1; }
I2P_USR1=${I2P_USR1:-}
I2P_FORWARD_WAIT=${I2P_FORWARD_WAIT:-60}

# i2p_requeue: `scontrol requeue` of this job, then exit 0 (the job starts again and resumes);
# returns 75 outside Slurm or when the requeue fails.
i2p_requeue() {
  if [ -n "${SLURM_JOB_ID:-}" ] && scontrol requeue "$SLURM_JOB_ID"; then
    echo "i2pmae-job: requeued job $SLURM_JOB_ID"
    exit 0
  fi
  return 75
}

# i2p_wait_requeue PID CMD [NP]: waits for PID (a launch of `i2pmae CMD` on NP ranks, default
# I2P_NTASKS, in the background) and returns its status. A preemption request (SIGUSR1 to this
# script, now or before the launch: i2p_usr1_came) is passed on to the ranks, once, when CMD
# stops on it (extract, pretrain, finetune, partseg) and as soon as the ranks can take it
# (i2p_ranks_ready; after I2P_FORWARD_WAIT = 60 s without seeing them ready, to the launcher
# anyway). It is never repeated: the program keeps it, and a launcher that has exited must not get
# it. A status of 75 (state saved) then requeues the job (i2p_requeue) unless I2P_NO_REQUEUE is set.
# The request stays recorded for a later launch of the same job (the arrays' next step).
i2p_wait_requeue() {
  I2P_LAUNCH_PID=$1 I2P_LAUNCH_CMD=$2
  local np=${3:-$I2P_NTASKS} rc='' r stops='' sent='' polled=''
  case $I2P_LAUNCH_CMD in
    extract|pretrain|finetune|partseg)
      stops=1
      [ -z "$I2P_USR1" ] ||
        echo "i2pmae-job: preemption signal (before the launch): $I2P_LAUNCH_CMD saves its state and stops"
      trap 'i2p_usr1_came; echo "i2pmae-job: preemption signal: $I2P_LAUNCH_CMD saves its state and stops"' USR1 ;;
    *) trap 'i2p_usr1_came; echo "i2pmae-job: preemption signal: ignored ($I2P_LAUNCH_CMD does not stop on it)"' USR1 ;;
  esac
  while :; do
    if [ -n "$stops" ] && [ -n "$I2P_USR1" ] && [ -z "$sent" ] && i2p_alive "$I2P_LAUNCH_PID"; then
      if i2p_ranks_ready "$I2P_LAUNCH_PID" "$np"; then
        i2p_forward_usr1 "$I2P_LAUNCH_PID"; sent=1
        [ -z "$polled" ] ||
          echo "i2pmae-job: preemption signal passed to the ranks once they ran ($((SECONDS - I2P_USR1)) s after it came)"
      elif [ $((SECONDS - I2P_USR1)) -ge "$I2P_FORWARD_WAIT" ]; then
        for r in $(i2p_launcher_pids "$I2P_LAUNCH_PID"); do i2p_takes_usr1 "$r" && kill -USR1 "$r" 2> /dev/null && sent=1; done
        [ -z "$sent" ] || echo "i2pmae-job: preemption signal passed to the launcher without seeing the ranks ready ($I2P_FORWARD_WAIT s)"
      fi
      # not yet: look again in 0.2 s (a `wait` would sleep until the launch ends)
      if [ -z "$sent" ]; then polled=1; sleep 0.2; continue; fi
    fi
    # `wait` returns early (status > 128) on a trapped signal: wait again for the real status
    I2P_TRAPPED=
    wait "$I2P_LAUNCH_PID"; r=$?
    if [ -n "$I2P_TRAPPED" ] && [ "$r" -gt 128 ]; then rc=$r; continue; fi
    [ "$r" = 127 ] && [ -n "$rc" ] || rc=$r   # 127: the interrupted wait had its status already
    break
  done
  trap i2p_usr1_came USR1
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
  i2p_wait_requeue $! "$what" "$1"
}
