"""model3d_ref_data.py -- the non-differentiable side of the 3D-network reference (tests/ref/model3d_ref.py):
configurations, the FPS/kNN tokenizer and mask propagation with the exact rules of include/pointops.h,
rng.h's xoshiro256** and the saliency-guided mask draw (as src/mask.c), bicubic reads of the 2D feature
grids, and the random test inputs. numpy only, except F.interpolate for the bicubic reference reads.
"""
import math

import numpy as np
import torch
import torch.nn.functional as F


FLT_MAX = np.float32(3.4028234663852886e38)
M64 = (1 << 64) - 1

# ---------------------------------------------------------------------------------------------
# Configuration (the fields of model3d_config in include/model3d.h)

CONFIG_FIELDS = ("points", "groups", "k", "dims", "depths", "heads", "dec_dims", "dec_depths",
                 "embed_hidden", "mask_ratio", "drop_path", "views", "feat_dim", "grid", "image",
                 "fps_skip_origin")


def config(name):
    if name == "tiny":
        return dict(points=64, groups=[16, 8, 4], k=[4, 4, 2], dims=[12, 24, 48], depths=[1, 1, 1],
                    heads=2, dec_dims=[48, 24], dec_depths=[1, 1], embed_hidden=[8, 16, 32],
                    mask_ratio=0.5, drop_path=0.0, views=2, feat_dim=6, grid=4, image=32,
                    fps_skip_origin=1)
    if name == "spec":
        return dict(points=2048, groups=[512, 256, 64], k=[16, 8, 8], dims=[96, 192, 384],
                    depths=[5, 5, 5], heads=6, dec_dims=[384, 192], dec_depths=[1, 1],
                    embed_hidden=[128, 256, 512], mask_ratio=0.8, drop_path=0.1, views=3,
                    feat_dim=512, grid=14, image=224, fps_skip_origin=1)
    raise ValueError("unknown config " + name)


def n_visible(cfg):
    return cfg["groups"][2] - int(cfg["mask_ratio"] * cfg["groups"][2])


# ---------------------------------------------------------------------------------------------
# Point operations with the exact rules of include/pointops.h (float32, x+y+z summed in order)

def sqdist_f32(pts, q):
    """pts (B,P,3), q (B,Q,3) float32 -> (B,Q,P) float32 squared distances, ((dx*dx+dy*dy)+dz*dz)."""
    d = pts[:, None, :, :] - q[:, :, None, :]
    return d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]


def fps(pts, M, skip_origin=1):
    """pts (B,P,3) float32 -> (B,M) int64. Starts at index 0; argmax takes the lowest index on ties.
    skip_origin: the official pointnet2 kernel's rule -- a point with x*x+y*y+z*z <= 1e-3 is never
    selected after index 0 (kept out of the argmax with distance -1: index 0 when none is left)."""
    B, P, _ = pts.shape
    x, y, z = pts[..., 0], pts[..., 1], pts[..., 2]
    dist = np.full((B, P), FLT_MAX, np.float32)
    if skip_origin:
        dist[(x * x + y * y + z * z).astype(np.float64) <= 1e-3] = np.float32(-1)
    idx = np.zeros((B, M), np.int64)
    last = np.zeros(B, np.int64)
    ar = np.arange(B)
    for m in range(1, M):
        dx = x - x[ar, last][:, None]
        dy = y - y[ar, last][:, None]
        dz = z - z[ar, last][:, None]
        np.minimum(dist, dx * dx + dy * dy + dz * dz, out=dist)
        last = np.argmax(dist, axis=1)
        idx[:, m] = last
    return idx


def knn(pts, q, k):
    """pts (B,P,3), q (B,Q,3) float32 -> (B,Q,k) int64 indices into pts, ascending squared distance,
    ties to the lower index (stable sort)."""
    return np.argsort(sqdist_f32(pts, q), axis=2, kind="stable")[:, :, :k]


def gather_rows(a, idx):
    """a (B,N,...) , idx (B,...) int -> a[b, idx[b]] for every b."""
    return np.stack([a[b][idx[b]] for b in range(a.shape[0])])


def tokenize(points, cfg):
    """The three-scale FPS + kNN tokenizer on float32 points (B,P,3). Returns a dict of numpy arrays:
    centres{s} (B,G_s) index into the previous scale (scale 0: into the points), knn{s} (B,G_s,k_s)
    index into the previous scale, orig{s} (B,G_s) original point index, xyz{s} (B,G_s,3) centre
    coordinates, interp (B,G1,3) the 3-NN scale-2 tokens of every scale-1 centre."""
    G, K = cfg["groups"], cfg["k"]
    t = {}
    prev, prev_orig = points, np.broadcast_to(np.arange(points.shape[1]), points.shape[:2])
    for s in range(3):
        c = fps(prev, G[s], cfg.get("fps_skip_origin", 1))
        xyz = gather_rows(prev, c)
        t["centres%d" % s] = c
        t["knn%d" % s] = knn(prev, xyz, K[s])
        t["orig%d" % s] = gather_rows(prev_orig, c)
        t["xyz%d" % s] = xyz
        prev, prev_orig = xyz, t["orig%d" % s]
    t["interp"] = knn(t["xyz2"], t["xyz1"], 3)
    return t


def propagate_mask(tok, vis2):
    """vis2 (B,G2) bool -> (vis0, vis1, vis2): a scale-s token is visible iff it is in the kNN set of
    a visible scale-(s+1) token."""
    B = vis2.shape[0]
    vis1 = np.zeros(tok["centres1"].shape, bool)
    vis0 = np.zeros(tok["centres0"].shape, bool)
    for b in range(B):
        vis1[b, tok["knn2"][b][vis2[b]].ravel()] = True
        vis0[b, tok["knn1"][b][vis1[b]].ravel()] = True
    return vis0, vis1, vis2


# ---------------------------------------------------------------------------------------------
# rng.h (xoshiro256** seeded through splitmix64) and the saliency-guided mask draw

def _splitmix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return x, z ^ (z >> 31)


def rng_mix(a, b):
    x = (a * 0xD1B54A32D192ED03 + 0x8CB92BA72F3D8DD7) & M64
    x, h = _splitmix64(x)
    x = h ^ ((b * 0xABC98388FB8FAC03) & M64)
    return _splitmix64(x)[1]


class Rng:
    def __init__(self, seed, stream):
        x = rng_mix(seed, stream)
        self.s = []
        for _ in range(4):
            x, v = _splitmix64(x)
            self.s.append(v)

    def u64(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & M64  # noqa: E731
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.u64() >> 11) * 2.0 ** -53


def draw_visible(saliency2, mask_key, n_vis):
    """saliency2 (G2,) float -> the first n_vis tokens (in draw order) of a permutation drawn without
    replacement from softmax(saliency2), computed in double, with stream rng_seed(mask_key, 0). As
    src/mask.c: remaining = 1 at the start; each draw: target = rng_uniform * remaining; walk the
    untaken indices ascending, accumulating p; take the first whose running sum > target (the last
    untaken one if rounding leaves none); remaining -= p[taken] (clamped at 0)."""
    s = [float(v) for v in np.asarray(saliency2, np.float32)]
    mx = max(s)
    p = [math.exp(v - mx) for v in s]
    z = 0.0
    for v in p:  # sequential, as the C loop
        z += v
    p = [v / z for v in p]
    r = Rng(int(mask_key), 0)
    taken = np.zeros(len(p), bool)
    remaining = 1.0
    out = []
    for _ in range(n_vis):
        target = r.uniform() * remaining
        pick, cum = -1, 0.0
        for i in range(len(p)):
            if taken[i]:
                continue
            pick = i
            cum += p[i]
            if cum > target:
                break
        out.append(pick)
        taken[pick] = True
        remaining = max(remaining - p[pick], 0.0)
    return out


# ---------------------------------------------------------------------------------------------
# Bicubic reads (include/bicubic.h); only the tap form is used for large grids, the F.interpolate
# form is the one the reference file uses.

def bicubic_taps(g, S, dst):
    """dst int array -> (idx (...,4) int64, w (...,4) float32), as bicubic.c."""
    A = np.float32(-0.75)
    src = np.float32(g) / np.float32(S) * (dst.astype(np.float32) + np.float32(0.5)) - np.float32(0.5)
    f = np.floor(src)
    t = (src - f).astype(np.float32)
    near = lambda x: ((A + 2) * x - (A + 3)) * x * x + 1  # noqa: E731
    far = lambda x: ((A * x - 5 * A) * x + 8 * A) * x - 4 * A  # noqa: E731
    w = np.stack([far(t + 1), near(t), near(1 - t), far(2 - t)], -1).astype(np.float32)
    idx = np.clip(f.astype(np.int64)[..., None] - 1 + np.arange(4), 0, g - 1)
    return idx, w


def point_features(grids, pixels, orig, image, use_interpolate=True):
    """grids (B,V,g,g,C), pixels (B,V,P,2), orig (B,N) point indices -> (B,N,V*C) float32: the
    bicubic-upsampled feature of each view at each point's pixel, views concatenated in order."""
    B, V, g, _, C = grids.shape
    out = np.zeros((B, orig.shape[1], V, C), np.float32)
    for b in range(B):
        pix = pixels[b][:, orig[b]].astype(np.int64)  # (V,N,2)
        if use_interpolate:
            gt = torch.from_numpy(np.ascontiguousarray(grids[b].transpose(0, 3, 1, 2)))
            up = F.interpolate(gt, size=(image, image), mode="bicubic", align_corners=False)
            for v in range(V):
                out[b, :, v] = up[v, :, pix[v, :, 0], pix[v, :, 1]].numpy().T
        else:
            ry, wy = bicubic_taps(g, image, pix[..., 0])
            cx, wx = bicubic_taps(g, image, pix[..., 1])
            for v in range(V):
                acc = np.zeros((orig.shape[1], C), np.float32)
                for a in range(4):
                    for c in range(4):
                        acc += (wy[v, :, a] * wx[v, :, c])[:, None] * grids[b, v, ry[v, :, a], cx[v, :, c]]
                out[b, :, v] = acc
    return out.reshape(B, orig.shape[1], V * C)


# ---------------------------------------------------------------------------------------------
# Inputs

def make_inputs(cfg, B, seed):
    """Random test inputs: points U(-1,1) (point 4 near the origin), saliency U(0,2), grids N(0,1), pixels = orthographic
    projection of the points (view v: rows from axis (v+1)%3, cols from axis v), mask_keys, and the
    forced visible scale-2 tokens = the saliency-guided draw with those keys (in draw order)."""
    rng = np.random.default_rng(seed)
    P, V, g, C, S = cfg["points"], cfg["views"], cfg["grid"], cfg["feat_dim"], cfg["image"]
    points = rng.uniform(-1, 1, (B, P, 3)).astype(np.float32)
    if P > 21:  # one point near the origin: plain FPS picks it, the kernel rule (pointops.h) not
        points[:, 21] *= np.float32(0.02)
    saliency = rng.uniform(0, 2, (B, P)).astype(np.float32)
    grids = rng.standard_normal((B, V, g, g, C)).astype(np.float32)
    pixels = np.zeros((B, V, P, 2), np.int16)
    for v in range(V):
        for j, axis in enumerate(((v + 1) % 3, v % 3)):
            pixels[:, v, :, j] = np.clip(np.floor((points[..., axis] + 1) * 0.5 * S), 0, S - 1)
    mask_keys = rng.integers(0, 2 ** 63, size=B, dtype=np.uint64)
    return dict(points=points, point_saliency=saliency, grids=grids, pixels=pixels, mask_keys=mask_keys)


def draw_masks(cfg, inputs, tok):
    n_vis = n_visible(cfg)
    out = np.zeros((inputs["points"].shape[0], n_vis), np.int32)
    for b in range(out.shape[0]):
        s2 = inputs["point_saliency"][b][tok["orig2"][b]]
        out[b] = draw_visible(s2, inputs["mask_keys"][b], n_vis)
    return out
