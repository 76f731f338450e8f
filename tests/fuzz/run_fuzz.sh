#!/bin/sh
# Runs every libFuzzer harness of $FUZZ_BUILD (built by `make fuzz`) for $FUZZ_SECONDS seconds,
# starting from its seed corpus tests/fuzz/corpus/<name>/ and the regression inputs
# tests/fuzz/regress/<name>/ (read only: new inputs go to $FUZZ_BUILD/corpus/<name>/, crashes to
# $FUZZ_BUILD/crashes/<name>/). Prints one line per harness (executions, coverage, findings) and
# exits non-zero if any harness found something. FUZZ_ONLY=name runs one harness.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
: "${FUZZ_BUILD:=$ROOT/build-fuzz}"
: "${FUZZ_SECONDS:=60}"
: "${FUZZ_ONLY:=}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0"
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
total_findings=0
for bin in "$FUZZ_BUILD"/fuzz_*; do
  [ -x "$bin" ] || continue
  case "$bin" in *.d|*.o) continue;; esac
  name=$(basename "$bin"); name=${name#fuzz_}
  [ -n "$FUZZ_ONLY" ] && [ "$name" != "$FUZZ_ONLY" ] && continue
  work="$FUZZ_BUILD/corpus/$name"; crashes="$FUZZ_BUILD/crashes/$name"; log="$FUZZ_BUILD/$name.log"
  rm -rf "$crashes"; mkdir -p "$work" "$crashes"
  seeds="$ROOT/tests/fuzz/corpus/$name"
  regress="$ROOT/tests/fuzz/regress/$name"
  [ -d "$regress" ] || regress=""
  # HDF5 allocates sizes it reads from the file and handles a failed malloc: as in production,
  # a huge request returns NULL there instead of counting as a finding. Our own readers keep the
  # default (a huge allocation from a few bytes of header is a finding: check sizes first).
  asan=$ASAN_OPTIONS; extra=""
  case "$name" in h5_*) asan="$ASAN_OPTIONS:allocator_may_return_null=1"; extra="-malloc_limit_mb=1048576";; esac
  # -close_fd_mask=1: the harnesses' stdout (--help texts) is noise; stderr keeps the reports.
  # shellcheck disable=SC2086
  ASAN_OPTIONS=$asan "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=4096 -max_len=65536 \
    -close_fd_mask=1 -print_final_stats=1 -artifact_prefix="$crashes/" $extra \
    "$work" "$seeds" $regress > "$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  found=$(find "$crashes" -type f | wc -l)
  [ "$rc" != 0 ] && [ "$found" = 0 ] && found=1
  total_findings=$((total_findings + found))
  printf 'fuzz %-16s %12s executions  cov %6s  %s findings%s\n' "$name" "${execs:-?}" "${cov:-?}" \
    "$found" "$( [ "$found" != 0 ] && echo "  (see $log, $crashes)")"
done
echo "fuzz: $total_findings findings"
[ "$total_findings" = 0 ]
