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
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
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
passed=0; failed=0; skipped=0
t_start=$(date +%s)

run_suite() { # name, command...
  name=$1; shift
  if [ -n "$TESTS" ] && ! echo "$name" | grep -q -- "$TESTS"; then return; fi
  log="$LOG_DIR/$name.log"
  t0=$(date +%s)
  "$@" > "$log" 2>&1
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

echo "total time $(( $(date +%s) - t_start ))s"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
