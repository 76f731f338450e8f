# tests/lib.sh -- helpers for the shell test suites (sourced). Each check prints one line:
#   PASS: name | FAIL: name: why | SKIP: name: why
# and the driver (tests/run_all.sh) counts them. PASS and FAIL lines end with " [S s]": the seconds
# since the suite's previous PASS / FAIL line (or its start), what the check and its set-up took,
# so that the suite's log says where its time goes (tests/out/NAME.log).
: "${ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${I2PMAE:=$ROOT/build/i2pmae}"
. "$ROOT/tests/mpi_env.sh"
export I2PMAE_PROGRESS_S=${I2PMAE_PROGRESS_S:-1}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/i2pmae-test.XXXXXX)
trap 'rm -rf "$T"' EXIT

T_LAST=$(date +%s.%N)
# took: TOOK = the seconds since the previous call (T_LAST), which it moves on (run in this shell,
# not in a command substitution, so that T_LAST moves).
took() {
  t_now=$(date +%s.%N)
  TOOK=$(awk -v a="$T_LAST" -v b="$t_now" 'BEGIN { printf "%.1f", b - a }')
  T_LAST=$t_now
}
pass() { took; echo "PASS: $1 [$TOOK s]"; }
fail() { took; echo "FAIL: $1: $2 [$TOOK s]"; }
skip() { echo "SKIP: $1: $2"; }

# check NAME CMD...: passes if CMD exits 0.
check() {
  n=$1; shift
  if "$@" > "$T/check.out" 2>&1; then pass "$n"; else fail "$n" "'$*' exited $? : $(tail -n 3 "$T/check.out" | tr '\n' ' ')"; fi
}

# mpi NP CMD...: runs CMD under mpirun with NP ranks (root, oversubscribed, unbound).
mpi() {
  np=$1; shift
  mpirun -np "$np" --oversubscribe --bind-to none "$@"
}

# expect_error NAME PATTERN CMD...: CMD must exit non-zero, print exactly one line starting with
# "i2pmae: error:" (on rank 0) that matches PATTERN, and must not hang (120 s limit).
expect_error() {
  n=$1; pat=$2; shift 2
  timeout 120 "$@" > "$T/ee.out" 2> "$T/ee.err"
  rc=$?
  lines=$(grep -c '^i2pmae: error:' "$T/ee.err")
  if [ "$rc" = 124 ]; then fail "$n" "hung (timeout)"; return; fi
  if [ "$rc" = 0 ]; then fail "$n" "exit status 0, expected an error"; return; fi
  if [ "$lines" != 1 ]; then fail "$n" "$lines error lines (want 1): $(head -c 400 "$T/ee.err" | tr '\n' ' ')"; return; fi
  if ! grep '^i2pmae: error:' "$T/ee.err" | grep -q -- "$pat"; then
    fail "$n" "error line does not match '$pat': $(grep '^i2pmae: error:' "$T/ee.err")"; return
  fi
  pass "$n"
}

# wait_for_line FILE PREFIX: waits (up to 60 s, polled every 20 ms) until FILE has a line that
# starts with PREFIX.
wait_for_line() {
  i=0
  while [ $i -lt 3000 ] && ! grep -q "^$2" "$1" 2> /dev/null; do sleep 0.02; i=$((i + 1)); done
}

# kill_ranks NAME MPID LOG LAST: SIGKILL to every rank (child) of the mpirun MPID, then waits until
# mpirun and its ranks are gone ($ranks: their pids); passes NAME unless LOG already has a line
# starting with LAST (the run finished before it was killed) or there was no rank to kill.
kill_ranks() {
  ranks=$(pgrep -P "$2")
  [ -n "$ranks" ] && kill -9 $ranks 2> /dev/null
  wait "$2" 2> /dev/null
  for pid in $ranks; do while kill -0 "$pid" 2> /dev/null; do sleep 0.05; done; done
  if grep -q "^$4" "$3" || [ -z "$ranks" ]; then
    fail "$1" "the run finished before it was killed (ranks: '$ranks')"
  else
    pass "$1"
  fi
}

# no_file NAME PATH: passes if neither PATH nor PATH.partial exists.
no_file() {
  if [ -e "$2" ] || [ -e "$2.partial" ]; then fail "$1" "$2 (or .partial) exists"; else pass "$1"; fi
}

# json_field FILE KEY: the value of KEY (a number, true/false, or a quoted string) in the JSON
# summary, FILE's last line.
json_field() { tail -n 1 "$1" | sed -n "s/.*\"$2\":\([^,}]*\).*/\1/p"; }

# pick_port: a random free TCP port P with P + 1 free too (a local Slurm cluster's pair), below the
# ephemeral range; returns 1 after 10 tries.
port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
pick_port() {
  lo=$(awk '{ print $1 - 2 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
  [ -n "$lo" ] && [ "$lo" -gt 12000 ] || lo=32766
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    p=$(shuf -i "10000-$lo" -n 1)
    if port_free "$p" && port_free $((p + 1)); then echo "$p"; return 0; fi
  done
  return 1
}

have_torch() { $PY -c 'import torch, h5py, numpy' > /dev/null 2>&1; }
have_h5py() { $PY -c 'import h5py, numpy' > /dev/null 2>&1; }

# ref_script_runs NAME PREFIX SCRIPT: the self-checks every PyTorch reference script passes: it
# writes $T/ref32.h5 (PREFIX_file_float32) and with --double $T/ref64.h5 (PREFIX_file_float64), and a
# second float32 run writes the same file (PREFIX_deterministic). Without torch/h5py: SKIP NAME and
# the suite ends.
ref_script_runs() {
  if ! have_torch; then
    skip "$1" "python3 torch/h5py/numpy missing"
    exit 0
  fi
  check "${2}_file_float32" timeout 60 $PY "$3" "$T/ref32.h5"
  check "${2}_file_float64" timeout 60 $PY "$3" "$T/ref64.h5" --double
  check "${2}_deterministic" sh -c "$PY '$3' '$T/again.h5' && h5diff '$T/ref32.h5' '$T/again.h5'"
}
