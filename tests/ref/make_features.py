#!/usr/bin/env python3
"""make_features.py DATA.h5 OUT.h5 [VIEWS] -- a features file in the layout of docs/features.md
for the pre-training and SVM tests, written with h5py without running the 2D ViT: orthographic
pixels of every point (view v: rows from axis (v+1)%3, cols from axis v, image 32), feature grids
2x2x8 that depend on the sample (so the 2D target carries information), a smooth point saliency.
Stored as float32 ("storage" = "fp32"), /done all 1, the dataset's fingerprint (FNV-1a as
features_fingerprint in src/features_read.c) so pretrain accepts it for DATA.h5 only."""
import json
import sys

import h5py
import numpy as np

IMAGE, PATCH, C = 32, 16, 8
G = IMAGE // PATCH


def fnv1a(h, data):
    for b in data:
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def main():
    data, out = sys.argv[1], sys.argv[2]
    V = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    with h5py.File(data, "r") as d:
        pts = d["points"][...].astype(np.float32)
        lab = d["label"][...].astype(np.int32).reshape(-1)
    N, P = pts.shape[0], pts.shape[1]
    h = fnv1a(1469598103934665603, np.array([N, P], "<i8").tobytes())
    h = fnv1a(h, lab.astype("<i4").tobytes())
    h = fnv1a(h, pts.astype("<f4").tobytes())  # every cloud
    lo, hi = pts.min(axis=1, keepdims=True), pts.max(axis=1, keepdims=True)
    unit = (pts - lo) / np.maximum(hi - lo, 1e-6)
    pixel = np.zeros((N, V, P, 2), np.int16)
    for v in range(V):
        for j, axis in enumerate(((v + 1) % 3, v % 3)):
            pixel[:, v, :, j] = np.clip(np.floor(unit[..., axis] * IMAGE), 0, IMAGE - 1)
    rng = np.random.default_rng(7)
    basis = rng.standard_normal((12, V, G, G, C)).astype(np.float32)
    patch = basis[lab % 12] + 0.1 * rng.standard_normal((N, V, G, G, C)).astype(np.float32)
    saliency = (0.01 * (1 + np.sin(np.arange(V * G * G)))).astype(np.float32).reshape(1, V, G, G)
    psal = (0.01 * (1 + unit[..., 0])).astype(np.float32)
    meta = dict(views=V, image=IMAGE, patch=PATCH, grid=G, feat_dim=C, block=0, source_samples=N,
                source_points=P)
    with h5py.File(out, "w") as f:
        f["patch"] = patch
        f["cls"] = np.zeros((N, V, C), np.float32)
        f["saliency"] = np.repeat(saliency, N, axis=0)
        f["pixel"] = pixel
        f["point_saliency"] = psal
        f["label"] = lab
        f["done"] = np.ones(N, np.uint8)
        for k, v in meta.items():
            f.attrs[k] = np.int64(v)
        strs = dict(format="i2pmae-features", vit="test:make_features", vit_spec="test:make_features",
                    weights_sha256="0" * 64, precision="fp32", storage="fp32", i2pmae="test",
                    config=json.dumps({"writer": "tests/ref/make_features.py"}), source=data,
                    source_fingerprint="%016x" % h)
        for k, v in strs.items():
            f.attrs[k] = v


if __name__ == "__main__":
    main()
