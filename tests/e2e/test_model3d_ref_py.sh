# test_model3d_ref_py.sh -- self-checks of the PyTorch reference of the 3D network
# (tests/ref/model3d_ref.py, checks in tests/ref/model3d_ref_check.py). Skipped without torch/h5py.
. "$(dirname "$0")/../lib.sh"
REF=$ROOT/tests/ref/model3d_ref.py
CHK=$ROOT/tests/ref/model3d_ref_check.py

ref_script_runs model3d_ref ref "$REF"

# The Python xoshiro256** (mask draw) against src/rng.c, compiled here from the source file alone.
cat > "$T/rng_values.c" <<'C'
#include <stdio.h>
#include <inttypes.h>
#include "rng.h"
int main(void)
{
    uint64_t seeds[4][2] = {{0, 0}, {1, 0}, {12345678901234567ull, 3}, {~0ull, 7}};
    for (int i = 0; i < 4; i++) {
        rng_t r;
        rng_seed(&r, seeds[i][0], seeds[i][1]);
        printf("%" PRIu64 " %" PRIu64, seeds[i][0], seeds[i][1]);
        for (int j = 0; j < 3; j++) printf(" %" PRIu64, rng_u64(&r));
        printf(" %.17g\n", rng_uniform(&r));
    }
    return 0;
}
C
rngcheck=rng_matches_c:$T/rng_values.txt
if ! cc -std=c11 -D_GNU_SOURCE -I"$ROOT/include" "$T/rng_values.c" "$ROOT/src/rng.c" -lm -o "$T/rng_values" \
       > "$T/cc.log" 2>&1 || ! "$T/rng_values" > "$T/rng_values.txt"; then
  fail ref_rng_matches_c "could not build src/rng.c: $(head -c 300 "$T/cc.log")"
  rngcheck=
fi

# All other checks in one process (a torch import costs ~1 s of CPU); it prints PASS/FAIL lines.
timeout 300 $PY "$CHK" --all file:"$T/ref32.h5" double_agrees:"$T/ref32.h5":"$T/ref64.h5" $rngcheck \
  gradcheck directional point_permutation batch_order visible_order finite masks mask_draw chamfer \
  bicubic_taps padding > "$T/checks.out" 2>&1
rc=$?
cat "$T/checks.out"
if [ "$rc" != 0 ] && ! grep -q '^FAIL' "$T/checks.out"; then
  fail ref_checks "exited $rc: $(tail -n 3 "$T/checks.out" | tr '\n' ' ')"
fi
