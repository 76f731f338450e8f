"""bench_pointops.py B P M Q K REPS -- the numpy reference of bench_pointops.c: FPS (batched over
the clouds, one vectorised update per selected point) and kNN (per cloud: a (Q,P) distance matrix,
argpartition, then a stable sort of the K candidates). Prints one JSON line with the best times."""
import json
import sys
import time

import numpy as np

B, P, M, Q, K, reps = (int(a) for a in sys.argv[1:7])
rng = np.random.default_rng(42)
pts = rng.uniform(-1, 1, size=(B, P, 3)).astype(np.float32)


def fps(pts, m):
    b = pts.shape[0]
    idx = np.zeros((b, m), np.int64)
    dist = np.full(pts.shape[:2], np.inf, np.float32)
    ar = np.arange(b)
    for i in range(1, m):
        last = pts[ar, idx[:, i - 1]][:, None, :]
        dist = np.minimum(dist, ((pts - last) ** 2).sum(-1))
        idx[:, i] = dist.argmax(axis=1)
    return idx


def knn(pts, centres, k):
    out = np.empty((pts.shape[0], centres.shape[1], k), np.int64)
    for b in range(pts.shape[0]):
        d = ((centres[b][:, None, :] - pts[b][None, :, :]) ** 2).sum(-1)
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable")
        out[b] = np.take_along_axis(part, order, 1)
    return out


def best(f):
    t = 1e30
    for _ in range(reps):
        t0 = time.perf_counter()
        r = f()
        t = min(t, time.perf_counter() - t0)
    return t, r


fps_s, idx = best(lambda: fps(pts, M))
centres = np.take_along_axis(pts, idx[:, :Q, None], 1)
knn_s, _ = best(lambda: knn(pts, centres, K))
print(json.dumps({"fps_s": fps_s, "knn_s": knn_s}))
