# test_dist_mpi.sh -- the MPI runtime tests (tests/unit/test_dist.c) under 2, 3 and 4 ranks: block
# ranges, error agreement when one or several ranks fail, and the data x stage grid (including a
# world size that is not a multiple of --stages). A hang counts as a failure (120 s limit).
. "$(dirname "$0")/../lib.sh"

: "${BUILD:=$ROOT/build}"
for np in 2 3 4; do
  if timeout 120 mpirun -np $np --oversubscribe --bind-to none env CMOCKA_MESSAGE_OUTPUT=stdout \
       "$BUILD/tests/test_dist" > "$T/d$np.out" 2>&1; then
    # every rank must have run all 6 tests
    n=$(grep -c '^\[  PASSED  \] 6 test' "$T/d$np.out")
    if [ "$n" = "$np" ]; then pass "dist_np$np"; else fail "dist_np$np" "$n of $np ranks passed all tests"; fi
  else
    fail "dist_np$np" "exit $?: $(grep -E 'FAILED|ERROR|error' "$T/d$np.out" | head -5 | tr '\n' ' ')"
  fi
done
