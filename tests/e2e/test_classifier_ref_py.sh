# test_classifier_ref_py.sh -- self-checks of the PyTorch reference of the fine-tuning classifier
# (tests/ref/classifier_ref.py): it runs in float32 and float64, the two agree (losses 1e-5 relative,
# logits 1e-4 of their largest), and a second run writes the same file. Skipped without torch/h5py.
. "$(dirname "$0")/../lib.sh"
REF=$ROOT/tests/ref/classifier_ref.py

ref_script_runs classifier_ref cref "$REF"
check cref_double_agrees $PY - "$T/ref32.h5" "$T/ref64.h5" <<'PY'
import sys
import h5py
import numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
bad = 0
for c in ("mm", "cat"):
    la, lb = a[c + "/expected/loss"][0], b[c + "/expected/loss"][0]
    za, zb = a[c + "/expected/activations/logits"][()], b[c + "/expected/activations/logits"][()]
    d = np.abs(za - zb).max()
    ok = abs(la - lb) <= 1e-5 * abs(lb) and d <= 1e-4 * np.abs(zb).max()
    print(c, "loss", la, lb, "logits max diff", d, "OK" if ok else "NOT OK")
    bad += not ok
sys.exit(1 if bad else 0)
PY
