# test_runner.sh -- the test driver's own guards (tests/run_all.sh):
#  - a bad SUITE_TIMEOUT is refused with one error line and status 2, before any suite runs;
#  - a suite still running after SUITE_TIMEOUT seconds is stopped: it fails with the hang report
#    (its processes), is named again after the last suite, and leaves no process behind. The suite
#    is a stand-in unit "binary" (a script that sleeps 60 s) in a build folder of its own.
. "$(dirname "$0")/../lib.sh"

for v in abc 0 -5 1x; do
  SUITE_TIMEOUT=$v TESTS=none sh "$ROOT/tests/run_all.sh" > "$T/bad.out" 2> "$T/bad.err"
  rc=$?
  if [ "$rc" = 2 ] && [ "$(wc -l < "$T/bad.err")" = 1 ] &&
    grep -q "^run_all: error: SUITE_TIMEOUT='$v': must be a whole number of seconds > 0" "$T/bad.err" &&
    ! grep -q 'passed' "$T/bad.out"; then
    pass "runner_bad_timeout_$v"
  else
    fail "runner_bad_timeout_$v" "status $rc: $(cat "$T/bad.err" "$T/bad.out" | head -n 3 | tr '\n' ' ')"
  fi
done

mkdir -p "$T/build/tests"
tag="i2pmae-runner-hang-$$"
printf '#!/bin/sh\nexec sh -c "sleep 60; : %s"\n' "$tag" > "$T/build/tests/test_runner_hang"
chmod +x "$T/build/tests/test_runner_hang"
t0=$(date +%s)
BUILD="$T/build" TESTS=unit_runner_hang SUITE_TIMEOUT=4 sh "$ROOT/tests/run_all.sh" > "$T/hang.out" 2>&1
rc=$?
dt=$(( $(date +%s) - t0 ))
check runner_hang_fails [ "$rc" != 0 ]
check runner_hang_stopped_in_time [ "$dt" -lt 30 ]
check runner_hang_report grep -q "^FAIL: hung: still running after 4s (SUITE_TIMEOUT); its processes:" "$T/hang.out"
check runner_hang_report_names_process grep -q "sleep 60; : $tag" "$T/hang.out"
check runner_hang_named_at_end grep -q "^failed suites: unit_runner_hang$" "$T/hang.out"
check runner_hang_totals grep -q "^0 passed, 1 failed, 0 skipped$" "$T/hang.out"
check runner_hang_nothing_left sh -c "! pgrep -f '[s]leep 60; : $tag' > /dev/null"
rm -f "$ROOT/tests/out/unit_runner_hang.log"
