"""Compares an `i2pmae vit` output with a reference: for /patch, /cls and /saliency the relative error
max|ours - ref| / max|ref| (over the whole dataset) must be <= TOL. Prints one line per dataset.
Usage: vit_compare.py OURS.h5 REF.h5 TOL"""
import sys

import h5py
import numpy as np

ours, ref, tol = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), float(sys.argv[3])
ok = True
for name in ("patch", "cls", "saliency"):
    a, b = ours[name][...].astype(np.float64), ref[name][...].astype(np.float64)
    if a.shape != b.shape:
        print(f"{name}: shape {a.shape} != reference {b.shape}")
        ok = False
        continue
    rel = np.abs(a - b).max() / np.abs(b).max()
    print(f"{name}: max relative error {rel:.3g} (tolerance {tol:g})")
    ok = ok and rel <= tol
sys.exit(0 if ok else 1)
