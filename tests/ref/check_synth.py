"""check_synth.py FILE SAMPLES POINTS -- independent checks of a `synth` file with h5py/numpy.

Checks the canonical layout, labels i % 12, unit-sphere normalisation (centroid 0 within 1e-4,
largest norm 1 within 1e-4), and that the classes look like their names: flat classes (plane,
annulus) have a smallest principal variance < 1e-3 of the largest, the sphere's ratio is > 0.3 (per-axis scale is at most 1.25/0.75).
Prints one line per failed check and exits 1 on any failure."""
import sys
import h5py
import numpy as np

path, n, p = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
bad = []
with h5py.File(path, "r") as f:
    pts, lab = f["points"][...], f["label"][...]
    attrs = dict(f.attrs)
    chunks = f["points"].chunks
if pts.shape != (n, p, 3) or pts.dtype != np.float32:
    bad.append(f"points {pts.shape} {pts.dtype}")
if lab.shape != (n,) or lab.dtype != np.int32:
    bad.append(f"label {lab.shape} {lab.dtype}")
if chunks != (1, p, 3):
    bad.append(f"chunks {chunks}")
if not np.array_equal(lab, np.arange(n) % 12):
    bad.append("labels are not i % 12")
def s(v):
    return v.decode() if isinstance(v, bytes) else str(v)
names = s(attrs.get("class_names", "")).split("\n")
if len(names) != 12 or names[0] != "sphere" or int(attrs.get("n_classes", 0)) != 12:
    bad.append(f"class names/n_classes: {names} {attrs.get('n_classes')}")
if s(attrs.get("format", "")) != "i2pmae-points" or s(attrs.get("source", "")) != "synth":
    bad.append(f"format/source attributes: {attrs}")
c = pts.astype(np.float64).mean(axis=1)
if np.abs(c).max() > 1e-4:
    bad.append(f"centroid off by {np.abs(c).max()}")
r = np.linalg.norm(pts.astype(np.float64), axis=2).max(axis=1)
if np.abs(r - 1).max() > 1e-4:
    bad.append(f"max norm off by {np.abs(r - 1).max()}")
for i in range(n):
    ev = np.linalg.eigvalsh(np.cov(pts[i].T.astype(np.float64)))
    ratio = ev[0] / ev[2]
    cls = names[lab[i]] if len(names) == 12 else "?"
    if cls in ("plane", "annulus") and ratio > 1e-3:
        bad.append(f"sample {i} ({cls}) is not flat: ratio {ratio}")
    if cls == "sphere" and ratio < 0.3:
        bad.append(f"sample {i} (sphere) is not round: ratio {ratio}")
for b in bad[:10]:
    print("check_synth:", b)
sys.exit(1 if bad else 0)
