#!/bin/sh
# The one test driver (`make test`). Runs every cmocka unit-test binary in $BUILD/tests and every
# shell suite tests/e2e/test_*.sh (CLI, MPI, reference comparisons, Slurm), and ends with the line
#   N passed, N failed, N skipped
# Exit status is non-zero if anything failed. TESTS=pattern runs only suites whose name matches.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
: "${BUILD:=$ROOT/build}"
: "${I2PMAE:=$BUILD/i2pmae}"
: "${TESTS:=}"
export ROOT BUILD I2PMAE
. "$ROOT/tests/mpi_env.sh"
if [ "${SAN:-0}" = 1 ]; then
  # fast_unwind_on_malloc=0: Open MPI, PMIx and their plugins have no frame pointers, so the fast
  # unwinder stops after one frame and the library suppressions of tests/lsan.supp cannot match.
  # disable_dlclose keeps MCA plugins mapped at exit so their frames have module names.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:exitcode=66:fast_unwind_on_malloc=0"
  export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
  export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
LOG_DIR=$ROOT/tests/out
mkdir -p "$LOG_DIR"
passed=0; failed=0; skipped=0; failed_names=
t_start=$(date +%s)
# A suite that runs past SUITE_TIMEOUT seconds (default 900; the slowest, e2e_slurm, takes ~210 s)
# is stopped and fails with a report of where it hung, so one hang cannot eat CI's whole time limit.
: "${SUITE_TIMEOUT:=900}"
case "$SUITE_TIMEOUT" in *[!0-9]*) bad_timeout=1 ;; *) [ "$SUITE_TIMEOUT" -gt 0 ] || bad_timeout=1 ;; esac
if [ -n "${bad_timeout:-}" ]; then
  echo "run_all: error: SUITE_TIMEOUT='$SUITE_TIMEOUT': must be a whole number of seconds > 0" >&2
  exit 2
fi

# stacks PID: one line per thread of process PID, its innermost 12 frames' function names (gdb),
# or the thread's kernel wait channel where gdb is missing or cannot attach.
stacks() {
  out=
  if command -v gdb > /dev/null 2>&1; then
    out=$(timeout 60 gdb -batch -nx -p "$1" -ex "thread apply all bt 12" 2> /dev/null | awk '
      /^Thread / { if (l != "") print l; match($0, /LWP [0-9]+/); l = "    " substr($0, RSTART, RLENGTH) ":"; next }
      /^#[0-9]+ / { f = $2; if (match($0, / in [^ ]+/)) f = substr($0, RSTART + 4, RLENGTH - 4); l = l " " f }
      END { if (l != "") print l }')
  fi
  if [ -n "$out" ]; then echo "$out"; return; fi
  for t in /proc/"$1"/task/*; do echo "    task ${t##*/}: wchan $(cat "$t/wchan" 2> /dev/null)"; done
}

# hang_report SID: the processes of the suite's session, and the stacks of its i2pmae processes.
hang_report() {
  echo "FAIL: hung: still running after ${SUITE_TIMEOUT}s (SUITE_TIMEOUT); its processes:"
  ps -eo pid=,sid=,stat=,etimes=,wchan:22=,args= | awk -v s="$1" '$2 == s' | cut -c1-220
  for p in $(ps -eo pid=,sid=,comm= | awk -v s="$1" '$2 == s && $3 == "i2pmae" { print $1 }'); do
    echo "  stacks of i2pmae $p:"
    stacks "$p"
  done
}

# run_watched LOG CMD...: CMD in a session of its own (output in LOG); past SUITE_TIMEOUT seconds the
# hang report goes to LOG and every process of the session is killed (status 124).
cur=
run_watched() {
  wlog=$1; shift
  setsid "$@" > "$wlog" 2>&1 &
  cur=$!
  (
    s=0
    while [ "$s" -lt "$SUITE_TIMEOUT" ]; do sleep 2; s=$((s + 2)); kill -0 "$cur" 2> /dev/null || exit 0; done
    hang_report "$cur" >> "$wlog" 2>&1
    pkill -9 -s "$cur"
  ) &
  dog=$!
  wait "$cur"
  wrc=$?
  kill "$dog" 2> /dev/null
  wait "$dog" 2> /dev/null
  pkill -9 -s "$cur" 2> /dev/null # what the suite left behind (a daemon, a stray rank)
  cur=
  if grep -q '^FAIL: hung: ' "$wlog"; then return 124; fi
  return "$wrc"
}
# Interrupted (Ctrl-C, a CI limit): the running suite's session goes too.
trap '[ -n "$cur" ] && pkill -9 -s "$cur"; exit 130' INT TERM

run_suite() { # name, command...
  name=$1; shift
  if [ -n "$TESTS" ] && ! echo "$name" | grep -q -- "$TESTS"; then return; fi
  log="$LOG_DIR/$name.log"
  t0=$(date +%s)
  run_watched "$log" "$@"
  rc=$?
  t1=$(date +%s)
  case "$name" in
    unit_*)
      p=$(sed -n 's/.*\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
      f=$(sed -n 's/.*\[  FAILED  \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
      s=$(sed -n 's/.*\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$log" | tail -1)
      ;;
    *)
      p=$(grep -c '^PASS: ' "$log"); f=$(grep -c '^FAIL: ' "$log"); s=$(grep -c '^SKIP: ' "$log")
      ;;
  esac
  p=${p:-0}; f=${f:-0}; s=${s:-0}
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; echo "FAIL: $name exited with status $rc" >> "$log"; fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  status=ok; [ "$f" != 0 ] && status=FAILED
  printf '%-34s %4s passed %3s failed %3s skipped %4ss  %s\n' "$name" "$p" "$f" "$s" $((t1 - t0)) "$status"
  if [ "$f" != 0 ]; then
    failed_names="$failed_names $name"
    echo "---- $log (failures and last lines) ----"
    grep -E '^(FAIL|\[  FAILED|\[  ERROR)' "$log" | head -20
    tail -n 25 "$log"
    echo "----"
  fi
  grep '^SKIP: ' "$log" | sed 's/^/    /'
}

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  case "$t" in *.d) continue;; esac
  n=$(basename "$t"); run_suite "unit_${n#test_}" env CMOCKA_MESSAGE_OUTPUT=stdout "$t"
done
for t in "$ROOT"/tests/e2e/test_*.sh; do
  [ -f "$t" ] || continue
  n=$(basename "$t" .sh); run_suite "e2e_${n#test_}" sh "$t"
done

# The hang reports again at the end, where a log's tail shows them.
for name in $failed_names; do
  if grep -q '^FAIL: hung: ' "$LOG_DIR/$name.log"; then
    echo "---- $name hung; the last test lines, its processes and stacks ----"
    grep -E '^(PASS|FAIL|SKIP): ' "$LOG_DIR/$name.log" | grep -v '^FAIL: hung: ' | tail -n 3
    sed -n '/^FAIL: hung: /,$p' "$LOG_DIR/$name.log" | head -n 60
  fi
done
[ -n "$failed_names" ] && echo "failed suites:$failed_names"
# The machine, for comparing runs (a CI log's tail included)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
isa=$(grep -m 1 -ow -e amx_bf16 -e avx512_bf16 -e avx512f -e avx2 /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "machine: ${cpu:-?}, $(nproc) cores, $(uname -r); $isa"
echo "total time $(( $(date +%s) - t_start ))s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
