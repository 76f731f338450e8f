"""Writes a small ModelNet40-layout file (/data (N,P,3) float32, /label (N,1)) of awkward clouds for
the projection tests: translated and anisotropically scaled, flat (zero range on one axis),
a line, duplicated points, and a single repeated point.
usage: make_clouds.py OUT.h5 P"""
import sys

import h5py
import numpy as np

out, P = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(5)
clouds = []
c = rng.normal(size=(P, 3)).astype(np.float32)
clouds.append(c * np.array([3.0, 0.2, 1.0], np.float32) + np.array([10, -4, 2], np.float32))
flat = rng.uniform(-1, 1, size=(P, 3)).astype(np.float32)
flat[:, 2] = 0.25
clouds.append(flat)
line = np.zeros((P, 3), np.float32)
line[:, 0] = np.linspace(-1, 1, P, dtype=np.float32)
clouds.append(line)
dup = rng.uniform(-0.5, 0.5, size=(P, 3)).astype(np.float32)
dup[P // 2:] = dup[: P - P // 2]
clouds.append(dup)
clouds.append(np.full((P, 3), 0.3, np.float32))
with h5py.File(out, "w") as f:
    f["data"] = np.stack(clouds)
    f["label"] = np.arange(len(clouds), dtype=np.uint8).reshape(-1, 1)
