#!/bin/bash
# local-cluster.sh -- a real single-node Slurm on this machine, for testing the sbatch scripts.
#
#   slurm/local-cluster.sh start    start munged, slurmctld and slurmd (idempotent)
#   slurm/local-cluster.sh stop     cancel this cluster's jobs, stop exactly the daemons it started
#   slurm/local-cluster.sh status   say what runs (exit 0 if all three daemons are up, 3 otherwise)
#   slurm/local-cluster.sh env      print the line to eval so sbatch/squeue find this cluster:
#                                   eval "$(slurm/local-cluster.sh env)"
#
# Everything lives in one state directory, nothing in /etc or /run: its own munge key and socket,
# slurm.conf (written from this machine's real CPU count and memory), spool, logs and PID files.
# Clients find the cluster through SLURM_CONF=<dir>/slurm.conf (`env` prints it).
#
# Environment:
#   I2PMAE_SLURM_DIR      state directory                    (default /tmp/i2pmae-slurm)
#   I2PMAE_SLURM_PORT     slurmctld port; slurmd uses +1     (default 6817)
#   I2PMAE_SLURM_TIMEOUT  seconds each daemon may take to come up or go down (default 30)
#
# Needs root (slurmd runs jobs as their users) and Debian's slurm-wlm and munge packages.
# Recipe: /work/shared/design/platform.md "Local Slurm"; docs/cluster.md explains it.
set -u

DIR=${I2PMAE_SLURM_DIR:-/tmp/i2pmae-slurm}
PORT=${I2PMAE_SLURM_PORT:-6817}
TIMEOUT=${I2PMAE_SLURM_TIMEOUT:-30}
CONF=$DIR/etc/slurm.conf
MUNGE_DIR=$DIR/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket.2
PID_MUNGED=$MUNGE_DIR/munged.pid
PID_CTLD=$DIR/run/slurmctld.pid
PID_SLURMD=$DIR/run/slurmd.pid
export SLURM_CONF=$CONF

die() { echo "local-cluster: error: $*" >&2; exit 1; }
say() { echo "local-cluster: $*"; }

# pid_alive PIDFILE NAME: prints the PID if PIDFILE names a live process whose command is NAME.
# Checking the name means a stale PID file never makes us signal a recycled, unrelated PID.
pid_alive() {
  [ -s "$1" ] || return 1
  local pid comm
  pid=$(head -n 1 "$1" | tr -dc 0-9)
  [ -n "$pid" ] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [ "$comm" = "$2" ] || return 1
  echo "$pid"
}

# port_in_use PORT: true if something listens on TCP PORT.
port_in_use() {
  if command -v ss > /dev/null; then
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q .
  else
    (exec 3<> "/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}

# wait_for SECONDS CMD...: polls CMD every 0.2 s until it succeeds; false after SECONDS.
wait_for() {
  local limit=$(( $1 * 5 )) i=0; shift
  while [ $i -lt $limit ]; do
    "$@" > /dev/null 2>&1 && return 0
    sleep 0.2; i=$((i + 1))
  done
  return 1
}

log_tail() { [ -f "$1" ] && { echo "--- last lines of $1:" >&2; tail -n 8 "$1" >&2; }; }

check_tools() {
  [ "$(id -u)" = 0 ] || die "must run as root (slurmd starts jobs as their users)"
  local t
  for t in munged munge slurmctld slurmd scontrol sinfo; do
    command -v "$t" > /dev/null || [ -x "/usr/sbin/$t" ] ||
      die "'$t' not found: install Debian's slurm-wlm and munge (sh tests/deps.sh)"
  done
  id munge > /dev/null 2>&1 || die "no 'munge' user: is Debian's munge package installed?"
  case $PORT in ''|*[!0-9]*) die "I2PMAE_SLURM_PORT='$PORT' is not a port number";; esac
}

write_config() {
  local host cpus mem sockets cores threads
  host=$(hostname -s)
  cpus=$(nproc --all)
  # Total memory in MiB minus 1 GiB for the system (what platform.md verified).
  mem=$(awk '/^MemTotal:/ { m = int($2 / 1024) - 1024; if (m < 256) m = 256; print m }' /proc/meminfo)
  # slurmd -C reports the real topology; use it when it parses, else CPUs only.
  sockets=$(slurmd -C 2>/dev/null | sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' | head -n 1)
  cores=$(slurmd -C 2>/dev/null | sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' | head -n 1)
  threads=$(slurmd -C 2>/dev/null | sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' | head -n 1)
  local topo=""
  if [ -n "$sockets" ] && [ -n "$cores" ] && [ -n "$threads" ] &&
     [ $((sockets * cores * threads)) = "$cpus" ]; then
    topo=" Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads"
  fi
  mkdir -p "$DIR/etc"
  cat > "$CONF.tmp" <<EOF
# Written by slurm/local-cluster.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ) -- single-node test cluster.
# Addresses are loopback so that the cluster works where the host name does not resolve.
ClusterName=i2pmae-local
# Job ids of their own per port: two test clusters on one machine would otherwise both run job 2,
# and Open MPI under srun names its shared-memory segments (/dev/shm/vader_segment.<host>.<job>.<rank>)
# after the PMIx namespace slurm.pmix.<job>.<step>, so their ranks would map each other's segments.
FirstJobId=$((PORT * 100))
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job may start again after this many seconds (default 120), which the
# requeue test (test_slurm.sh pretrain_requeued_by_itself) waits for every time.
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$PID_CTLD
SlurmdPidFile=$PID_SLURMD
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ReturnToService=2
# Quick turn-around for tests: SIGKILL 5 s after SIGTERM on scancel. Finished jobs are kept
# 5 s: \`sbatch --wait\` polls every 2 s only while its interval is below MinJobAge/2, and
# otherwise backs off to 8 s then 32 s, which would make every waited-for job take that long.
KillWait=5
MinJobAge=5
# Schedule pending jobs (a requeued one whose begin time has come) every 2 s, not every 60.
SchedulerParameters=sched_interval=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem$topo State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$CONF.tmp" "$CONF"
  # PMIx (srun --mpi=pmix) keeps its per-step directories here, not in /tmp, so that two clusters
  # on one machine (job ids start at 1 in each) never share one.
  mkdir -p "$DIR/pmix"
  echo "PMIxCliTmpDirBase=$DIR/pmix" > "$DIR/etc/mpi.conf"
}

start_munged() {
  if pid_alive "$PID_MUNGED" munged > /dev/null; then return 0; fi
  mkdir -p "$MUNGE_DIR"
  chown munge:munge "$MUNGE_DIR"
  chmod 0755 "$MUNGE_DIR"   # munged requires the socket directory to be searchable by all
  runuser -u munge -- test -x "$MUNGE_DIR" ||
    die "the munge user cannot reach $MUNGE_DIR: every directory above it must be searchable by all (chmod o+x), or set I2PMAE_SLURM_DIR"
  # A key of its own, so this cluster works even where /etc/munge has none.
  if [ ! -s "$MUNGE_DIR/munge.key" ]; then
    if command -v mungekey > /dev/null; then
      runuser -u munge -- mungekey --create --keyfile="$MUNGE_DIR/munge.key" ||
        die "mungekey could not create $MUNGE_DIR/munge.key"
    else
      dd if=/dev/urandom of="$MUNGE_DIR/munge.key" bs=1 count=1024 2>/dev/null
      chown munge:munge "$MUNGE_DIR/munge.key"; chmod 0600 "$MUNGE_DIR/munge.key"
    fi
  fi
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock"
  runuser -u munge -- munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_DIR/munge.key" \
    --pid-file="$PID_MUNGED" --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" ||
    { log_tail "$MUNGE_DIR/munged.log"; die "munged failed to start"; }
  wait_for "$TIMEOUT" sh -c "munge -S '$MUNGE_SOCKET' -n | unmunge -S '$MUNGE_SOCKET'" ||
    { log_tail "$MUNGE_DIR/munged.log"; die "munged did not answer within ${TIMEOUT}s"; }
}

start_slurmctld() {
  if pid_alive "$PID_CTLD" slurmctld > /dev/null; then return 0; fi
  port_in_use "$PORT" &&
    die "port $PORT (slurmctld) is already in use -- another Slurm? Choose another with I2PMAE_SLURM_PORT"
  # -c: start from a clean job state (a test cluster; finished or killed jobs are not carried over).
  slurmctld -c -f "$CONF" || { log_tail "$DIR/log/slurmctld.log"; die "slurmctld failed to start"; }
  wait_up "$TIMEOUT" "$PID_CTLD" slurmctld sh -c 'scontrol ping | grep -q "is UP"'
  case $? in
    1) log_tail "$DIR/log/slurmctld.log"; die "slurmctld did not answer within ${TIMEOUT}s (log: $DIR/log/slurmctld.log)" ;;
    2) log_tail "$DIR/log/slurmctld.log"; die "slurmctld exited during start-up (log: $DIR/log/slurmctld.log)" ;;
  esac
}

node_usable() { sinfo -h -o %T | grep -Eq '^(idle|mixed|allocated)'; }

# wait_up SECONDS PIDFILE NAME CHECK...: polls CHECK every 0.2 s. Returns 0 once it succeeds,
# 1 after SECONDS, 2 as soon as the daemon has been gone for 2 s (no live PID in its PID file:
# it exited on start, e.g. on a taken port), rather than waiting out the whole time limit.
wait_up() {
  local limit=$(( $1 * 5 )) pidfile=$2 name=$3 i=0 gone=0; shift 3
  while [ $i -lt $limit ]; do
    "$@" > /dev/null 2>&1 && return 0
    if pid_alive "$pidfile" "$name" > /dev/null; then gone=0; else gone=$((gone + 1)); fi
    [ $gone -ge 10 ] && return 2
    sleep 0.2; i=$((i + 1))
  done
  return 1
}

start_slurmd() {
  if pid_alive "$PID_SLURMD" slurmd > /dev/null; then return 0; fi
  port_in_use $((PORT + 1)) &&
    die "port $((PORT + 1)) (slurmd) is already in use -- another Slurm? Choose another with I2PMAE_SLURM_PORT"
  slurmd -f "$CONF" || { log_tail "$DIR/log/slurmd.log"; die "slurmd failed to start"; }
  wait_up "$TIMEOUT" "$PID_SLURMD" slurmd node_usable
  case $? in
    1) log_tail "$DIR/log/slurmd.log"; die "node did not become idle within ${TIMEOUT}s (sinfo: $(sinfo -h -o '%T %E' 2>&1 | head -n 1))" ;;
    2) log_tail "$DIR/log/slurmd.log"
       if tail -n 20 "$DIR/log/slurmd.log" 2>/dev/null | grep -q 'Address already in use'; then
         die "port $((PORT + 1)) (slurmd) is already in use -- choose another with I2PMAE_SLURM_PORT"
       fi
       die "slurmd exited during start-up (log: $DIR/log/slurmd.log)" ;;
  esac
}

cmd_start() {
  check_tools
  if pid_alive "$PID_MUNGED" munged > /dev/null && pid_alive "$PID_CTLD" slurmctld > /dev/null &&
     pid_alive "$PID_SLURMD" slurmd > /dev/null; then
    say "already running ($DIR)"
    echo "export SLURM_CONF=$CONF"
    return 0
  fi
  mkdir -p "$DIR/run" "$DIR/log" "$DIR/ctld" "$DIR/slurmd"
  chmod 0755 "$DIR"
  # Rewrite the config only while no Slurm daemon of this cluster runs (they read it at start).
  if ! pid_alive "$PID_CTLD" slurmctld > /dev/null && ! pid_alive "$PID_SLURMD" slurmd > /dev/null; then
    write_config
  fi
  # If any step fails, stop what this call started so that nothing is left half up.
  trap 'cmd_stop_quiet' EXIT
  start_munged
  start_slurmctld
  start_slurmd
  trap - EXIT
  say "up: $(sinfo -h -o '%P %a %D %T %N cpus=%c mem=%mMiB' | head -n 1) ($DIR)"
  echo "export SLURM_CONF=$CONF"
}

# stop_pid PIDFILE NAME: SIGTERM, then SIGKILL after the time limit; only that exact PID.
stop_pid() {
  local pid
  pid=$(pid_alive "$1" "$2") || { rm -f "$1"; return 0; }
  kill -TERM "$pid" 2>/dev/null
  if ! wait_for "$TIMEOUT" sh -c "! kill -0 $pid"; then
    echo "local-cluster: $2 (pid $pid) ignored SIGTERM for ${TIMEOUT}s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null
    wait_for 5 sh -c "! kill -0 $pid"
  fi
  rm -f "$1"
}

# Cancels the jobs of this cluster (not of any other) and waits until they are gone, so that no
# job step outlives its slurmd.
cancel_jobs() {
  pid_alive "$PID_CTLD" slurmctld > /dev/null || return 0
  [ -n "$(squeue -h -o %i 2>/dev/null)" ] || return 0
  scancel --full --quiet $(squeue -h -o %i) 2>/dev/null
  wait_for "$TIMEOUT" sh -c '[ -z "$(squeue -h -o %i)" ]' ||
    echo "local-cluster: jobs still listed after ${TIMEOUT}s: $(squeue -h -o '%i %T' | tr '\n' ' ')" >&2
}

cmd_stop_quiet() {
  cancel_jobs
  stop_pid "$PID_SLURMD" slurmd
  stop_pid "$PID_CTLD" slurmctld
  stop_pid "$PID_MUNGED" munged
}

cmd_stop() {
  [ -d "$DIR" ] || { say "not running (no $DIR)"; return 0; }
  cmd_stop_quiet
  say "stopped ($DIR)"
}

cmd_status() {
  local n=0 name file pid
  for name in munged slurmctld slurmd; do
    case $name in munged) file=$PID_MUNGED;; slurmctld) file=$PID_CTLD;; slurmd) file=$PID_SLURMD;; esac
    if pid=$(pid_alive "$file" "$name"); then
      echo "$name: running (pid $pid)"; n=$((n + 1))
    else
      echo "$name: not running"
    fi
  done
  if [ $n = 3 ]; then
    echo "node: $(sinfo -h -o '%N %T cpus=%c mem=%mMiB' 2>&1 | head -n 1)"
    echo "jobs: $(squeue -h 2>/dev/null | wc -l)"
    echo "export SLURM_CONF=$CONF"
    return 0
  fi
  return 3
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  -h|--help|help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) echo "usage: $0 start|stop|status|env   (see --help)" >&2; exit 2 ;;
esac
