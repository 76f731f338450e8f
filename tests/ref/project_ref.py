"""Independent numpy implementation of the I2P-MAE projection (i2pmae-spec.md section 2), written
after the reference PyTorch code (float32 throughout, scatter-add of a (N*25) splat list).

usage: project_ref.py DATA.h5 SAMPLE DUMP.h5 VIEWS S
Compares with `i2pmae render --dump DUMP.h5`: pixel indices must be identical, depth sums and
normalised images within 1e-5. Prints one line per check; exit status 1 on any mismatch.
"""
import sys

import h5py
import numpy as np

VIEW_AXES = [(0, 1, 2), (2, 0, 1), (1, 2, 0)]
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def project(pc, view, S):
    """pc (P,3) float32 -> depth (S,S) float32, pixel (P,2) int, as the reference code does."""
    pc = pc[:, list(VIEW_AXES[view])].astype(np.float32)
    P = pc.shape[0]
    rng = pc.max(axis=0) - pc.min(axis=0)
    g = np.float32(rng[:2].max()) / np.float32(S - 3)
    if not g > 0:
        g = np.float32(1)
    pmin = pc[:, :2].min(axis=0)
    idx = np.floor((pc[:, :2] - pmin) / g).astype(np.int64)                  # (P,2)
    off = np.array([(i, j) for i in range(-2, 3) for j in range(-2, 3)])      # (25,2), row offset outer
    dense = (idx[:, None, :] + off[None, :, :]).reshape(P * 25, 2) + 1
    ctr = np.floor((dense.max(axis=0) + dense.min(axis=0)) / 2).astype(np.int64)
    shift = S // 2 - ctr - 1
    dense = dense + shift
    dense = dense + (dense < 0)
    dense = dense - (dense > S - 1)
    assert dense.min() >= 0 and dense.max() <= S - 1
    flat = dense[:, 0] * S + dense[:, 1]
    val = np.repeat(pc[:, 2], 25)
    depth = np.zeros(S * S, np.float32)
    np.add.at(depth, flat, val)                                               # sequential, in order
    pix = idx + 1 + shift
    outside = ((pix < 0) | (pix >= S)).any(axis=1)
    pix[outside] = -1
    return depth.reshape(S, S), pix


def normalise(depth):
    sig = (np.float32(1) / (np.float32(1) + np.exp(-depth))).astype(np.float32)
    return ((sig[None] - MEAN[:, None, None]) / STD[:, None, None]).astype(np.float32)


def main():
    data, sample, dump, V, S = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    with h5py.File(data, "r") as f:
        key = "points" if "points" in f else "data"
        pc = np.asarray(f[key][sample], np.float32)
    with h5py.File(dump, "r") as f:
        c_depth, c_image, c_pixel = f["depth"][:], f["image"][:], f["pixel"][:]
    ok = True
    for v in range(V):
        depth, pix = project(pc, v, S)
        img = normalise(depth)
        same_pix = np.array_equal(pix, c_pixel[v].astype(np.int64))
        d_err = float(np.abs(depth - c_depth[v]).max())
        i_err = float(np.abs(img - c_image[v]).max())
        good = same_pix and d_err <= 1e-5 and i_err <= 1e-5
        ok &= good
        print(f"view {v}: pixels {'identical' if same_pix else 'DIFFER'}, depth max|diff| {d_err:.2e}, "
              f"image max|diff| {i_err:.2e}, occupied {int((depth != 0).sum())} px: "
              f"{'OK' if good else 'NOT OK'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
