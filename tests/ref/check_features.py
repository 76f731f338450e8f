"""Independent checks of a features file written by `i2pmae extract` (h5py + numpy + torch):
layout and attributes, labels copied, every sample done, the pixel table equal to the numpy
projection (project_ref.py), and the per-point saliency equal to torch's bicubic upsampling
(F.interpolate, align_corners=False) of the stored saliency grids read at each point's pixel and
averaged over the views.
usage: check_features.py DATA.h5 FEATURES.h5 [--fp32]"""
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from project_ref import project  # noqa: E402

data, feats = sys.argv[1], sys.argv[2]
fp32 = "--fp32" in sys.argv[3:]
ok = True


def report(name, good, detail=""):
    global ok
    ok &= bool(good)
    print(f"{name}: {'OK' if good else 'NOT OK'} {detail}")


with h5py.File(data, "r") as f:
    pts = np.asarray(f["points" if "points" in f else "data"], np.float32)
    lab = np.asarray(f["label"]).reshape(-1).astype(np.int32)
with h5py.File(feats, "r") as f:
    a = f.attrs
    N, P = pts.shape[:2]
    V, g, C, S = int(a["views"]), int(a["grid"]), int(a["feat_dim"]), int(a["image"])
    report("format", a["format"] == "i2pmae-features")
    for k in ["vit", "vit_spec", "weights_sha256", "precision", "storage", "i2pmae", "config", "identity",
              "source", "source_fingerprint", "block", "patch"]:
        report(f"attribute {k}", k in a)
    report("shapes", f["patch"].shape == (N, V, g, g, C) and f["cls"].shape == (N, V, C)
           and f["saliency"].shape == (N, V, g, g) and f["pixel"].shape == (N, V, P, 2)
           and f["point_saliency"].shape == (N, P), str(f["patch"].shape))
    report("patch dtype", f["patch"].dtype == (np.float32 if fp32 else np.float16), str(f["patch"].dtype))
    report("one sample per chunk", f["patch"].chunks == (1, V, g, g, C), str(f["patch"].chunks))
    report("labels", np.array_equal(f["label"][:], lab))
    report("all done", bool(np.all(f["done"][:] == 1)))
    pix = f["pixel"][:].astype(np.int64)
    sal = f["saliency"][:]
    ps = f["point_saliency"][:]
    report("patch finite", bool(np.isfinite(f["patch"][:].astype(np.float32)).all()))
    report("saliency in [0,1), rows sum < 1", bool((sal >= 0).all() and (sal.reshape(N, V, -1).sum(-1) < 1).all()))

bad = 0
for n in range(N):
    for v in range(V):
        _, p = project(pts[n], v, S)
        bad += not np.array_equal(p, pix[n, v])
report("pixel table equals numpy projection", bad == 0, f"({bad} of {N * V} sample-views differ)")

up = torch.nn.functional.interpolate(torch.from_numpy(sal).reshape(N * V, 1, g, g), size=(S, S),
                                     mode="bicubic", align_corners=False).reshape(N, V, S, S).numpy()
want = np.zeros((N, P), np.float64)
cnt = np.zeros((N, P))
for v in range(V):
    inside = pix[:, v, :, 0] >= 0
    r, c = np.clip(pix[:, v, :, 0], 0, S - 1), np.clip(pix[:, v, :, 1], 0, S - 1)
    val = up[np.arange(N)[:, None], v, r, c]
    want += np.where(inside, val, 0)
    cnt += inside
want = np.where(cnt > 0, want / np.maximum(cnt, 1), 0)
err = float(np.abs(want - ps).max())
report("point saliency equals torch bicubic", err <= 1e-6, f"(max |diff| {err:.2e})")
sys.exit(0 if ok else 1)
