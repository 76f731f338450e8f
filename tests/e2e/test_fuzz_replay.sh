# test_fuzz_replay.sh -- every fuzz harness of tests/fuzz/ (built with the ordinary compiler by
# `make all`, with a plain main: tests/fuzz/replay_main.c) runs once on each file of its seed
# corpus tests/fuzz/corpus/<name>/ and of its regression inputs tests/fuzz/regress/<name>/ (the
# inputs that once crashed or hung a reader) without crashing, within a time limit. Under
# `make test SAN=1` the same runs happen with AddressSanitizer + UBSan. `make fuzz` does the fuzzing.
. "$(dirname "$0")/../lib.sh"

: "${BUILD:=$ROOT/build}"
n_bins=0
for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
  name=$(basename "$src" .c); name=${name#fuzz_}
  bin="$BUILD/fuzz/replay_$name"
  if [ ! -x "$bin" ]; then fail "fuzz_replay_$name" "$bin not built (make all)"; continue; fi
  n_bins=$((n_bins + 1))
  files=$(find "$ROOT/tests/fuzz/corpus/$name" "$ROOT/tests/fuzz/regress/$name" -type f 2>/dev/null | sort)
  if [ -z "$files" ]; then fail "fuzz_replay_$name" "no corpus in tests/fuzz/corpus/$name"; continue; fi
  n=$(echo "$files" | wc -l)
  # shellcheck disable=SC2086
  (cd "$T" && timeout 120 "$bin" $files) > "$T/replay.out" 2>&1
  rc=$?
  got=$(grep -c '^replayed ' "$T/replay.out")
  if [ "$rc" = 0 ] && [ "$got" = "$n" ]; then pass "fuzz_replay_$name ($n inputs)"
  else fail "fuzz_replay_$name" "status $rc, $got of $n inputs replayed: $(tail -n 5 "$T/replay.out" | tr '\n' ' ')"; fi
done
[ "$n_bins" -gt 0 ] || fail fuzz_replay "no harness found in tests/fuzz/"
