"""convert_ref.py -- fixtures in the real dataset layouts, and independent numpy checks of
`i2pmae convert` outputs.

  convert_ref.py make DIR                 writes DIR/modelnet40_ply_hdf5_2048/, DIR/scanobjectnn.h5,
                                          DIR/ShapeNet55-34/, DIR/ModelNet40/ (OFF meshes)
  convert_ref.py check FORMAT DIR OUT P   compares OUT (written by convert) with numpy's result

Tolerances: coordinates within 1e-5 (float32 normalisation of values of order 1); OFF: the same
sampling re-implemented here (rng.h ported) within 1e-5, its points on the mesh (1e-9), and the
area weighting within 0.05 of the expected 0.75 share (2048 points: binomial std 0.01)."""
import os
import sys

import h5py
import numpy as np

RNG = np.random.default_rng(1234)
MN_NAMES = ["airplane", "bathtub", "bed", "bench", "bookshelf"]


def make(d):
    mn = os.path.join(d, "modelnet40_ply_hdf5_2048")
    os.makedirs(mn, exist_ok=True)
    with open(os.path.join(mn, "shape_names.txt"), "w") as f:
        f.write("\n".join(MN_NAMES) + "\n")
    for name, n in (("train0", 5), ("train1", 4), ("test0", 3)):
        with h5py.File(os.path.join(mn, f"ply_data_{name}.h5"), "w") as f:
            f["data"] = RNG.normal(size=(n, 64, 3)).astype(np.float32) * 3 + 1
            f["label"] = RNG.integers(0, 5, size=(n, 1)).astype(np.uint8)
            f["normal"] = np.zeros((n, 64, 3), np.float32)
    with open(os.path.join(mn, "train_files.txt"), "w") as f:
        f.write("data/modelnet40_ply_hdf5_2048/ply_data_train0.h5\ndata/modelnet40_ply_hdf5_2048/ply_data_train1.h5\n")
    with h5py.File(os.path.join(d, "scanobjectnn.h5"), "w") as f:
        f["data"] = RNG.normal(size=(6, 48, 3)).astype(np.float32)
        f["label"] = np.array([0, 3, 14, 7, 7, 1], np.int64)
        f["mask"] = np.zeros((6, 48), np.int64)
    sn = os.path.join(d, "ShapeNet55-34")
    os.makedirs(os.path.join(sn, "ShapeNet-55"), exist_ok=True)
    os.makedirs(os.path.join(sn, "shapenet_pc"), exist_ok=True)
    train = ["02691156-aa01.npy", "03001627-bb02.npy", "02691156-cc03.npy", "04379243-dd04.npy"]
    test = ["03001627-ee05.npy", "02828884-ff06.npy"]
    for name in train + test:
        a = RNG.normal(size=(96, 3)) * 2
        if name.startswith("03001627"):   # one file stored as float64 / npy version 2.0
            with open(os.path.join(sn, "shapenet_pc", name), "wb") as f:
                np.lib.format.write_array(f, a.astype(np.float64), version=(2, 0))
        else:
            np.save(os.path.join(sn, "shapenet_pc", name), a.astype(np.float32))
    for split, names in (("train", train), ("test", test)):
        with open(os.path.join(sn, "ShapeNet-55", split + ".txt"), "w") as f:
            f.write("\n".join(names) + "\n")
    off = os.path.join(d, "ModelNet40")
    for cls in ("chair", "box"):
        os.makedirs(os.path.join(off, cls, "train"), exist_ok=True)
        os.makedirs(os.path.join(off, cls, "test"), exist_ok=True)
    # two triangles with areas 3 and 1 (shared edge on the x axis), header glued to the counts
    with open(os.path.join(off, "box", "train", "box_0001.off"), "w") as f:
        f.write("OFF4 2 0\n0 0 0\n2 0 0\n0 3 0\n0 -1 0\n3 0 1 2\n3 0 3 1\n")
    # a unit square as one quad face, with a comment and a colour
    with open(os.path.join(off, "chair", "train", "chair_0001.off"), "w") as f:
        f.write("OFF\n# a comment\n4 1 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3 255 0 0\n")
    with open(os.path.join(off, "chair", "train", "chair_0002.off"), "w") as f:
        f.write("OFF\n4 4 6\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 1 2\n3 0 1 3\n3 0 2 3\n3 1 2 3\n")
    with open(os.path.join(off, "chair", "test", "chair_0100.off"), "w") as f:
        f.write("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")


def normalize(p):
    p = p.astype(np.float64)
    p = p - p.mean(axis=0)
    m = np.sqrt((p ** 2).sum(axis=1)).max()
    return p / m if m > 0 else p


def fps(p, m):
    """Farthest point sampling from index 0, lowest index on ties, float32 distances."""
    p = p.astype(np.float32)
    idx = [0]
    dist = np.full(len(p), np.inf, np.float32)
    for _ in range(1, m):
        d = ((p - p[idx[-1]]) ** 2).sum(axis=1, dtype=np.float32)
        dist = np.minimum(dist, d)
        idx.append(int(np.argmax(dist)))
    return np.array(idx)


def read_out(path):
    with h5py.File(path, "r") as f:
        a = dict(f.attrs)
        return f["points"][...], f["label"][...], {k: (v.decode() if isinstance(v, bytes) else v) for k, v in a.items()}


def close(name, got, want, tol, bad):
    if got.shape != want.shape:
        bad.append(f"{name}: shape {got.shape} != {want.shape}")
    elif np.abs(got - want).max() > tol:
        bad.append(f"{name}: max diff {np.abs(got - want).max()} > {tol}")


def point_triangle_distance(p, a, b, c):
    """Distance of p to triangle abc: the plane distance if the projection falls inside, else the
    nearest edge (enough for the small fixtures)."""
    n = np.cross(b - a, c - a)
    n = n / np.linalg.norm(n)
    q = p - np.dot(p - a, n) * n
    v0, v1, v2 = c - a, b - a, q - a
    d00, d01, d11, d20, d21 = v0 @ v0, v0 @ v1, v1 @ v1, v2 @ v0, v2 @ v1
    den = d00 * d11 - d01 * d01
    u, v = (d11 * d20 - d01 * d21) / den, (d00 * d21 - d01 * d20) / den
    if u >= -1e-9 and v >= -1e-9 and u + v <= 1 + 1e-9:
        return abs(np.dot(p - a, n))
    best = np.inf
    for s, e in ((a, b), (b, c), (c, a)):
        t = np.clip(np.dot(p - s, e - s) / np.dot(e - s, e - s), 0, 1)
        best = min(best, np.linalg.norm(p - (s + t * (e - s))))
    return best


def check(fmt, d, out, P):
    bad = []
    pts, lab, attrs = read_out(out)
    if fmt == "modelnet40":
        mn = os.path.join(d, "modelnet40_ply_hdf5_2048")
        data, labels = [], []
        for k in (0, 1):
            with h5py.File(os.path.join(mn, f"ply_data_train{k}.h5"), "r") as f:
                data.append(f["data"][...]); labels.append(f["label"][...][:, 0])
        data, labels = np.concatenate(data), np.concatenate(labels)
        want = np.stack([normalize(c[:P]) for c in data])   # first P points (spec: SVM data)
        close("modelnet40 points", pts, want, 1e-5, bad)
        if not np.array_equal(lab, labels.astype(np.int32)):
            bad.append("modelnet40 labels differ")
        if attrs.get("class_names", "").split("\n") != MN_NAMES or int(attrs.get("n_classes", 0)) != 5:
            bad.append(f"modelnet40 class names {attrs.get('class_names')!r}")
    elif fmt == "scanobjectnn":
        with h5py.File(os.path.join(d, "scanobjectnn.h5"), "r") as f:
            data, labels = f["data"][...], f["label"][...]
        close("scanobjectnn points", pts, np.stack([normalize(c[:P]) for c in data]), 1e-5, bad)
        if not np.array_equal(lab, labels.astype(np.int32)):
            bad.append("scanobjectnn labels differ")
        names = attrs.get("class_names", "").split("\n")
        if len(names) != 15 or names[14] != "toilet":
            bad.append(f"scanobjectnn class names {names}")
    elif fmt == "shapenet55":
        sn = os.path.join(d, "ShapeNet55-34")
        lines = open(os.path.join(sn, "ShapeNet-55", "train.txt")).read().split()
        allsyn = sorted({l.split("-")[0] for l in lines + open(os.path.join(sn, "ShapeNet-55", "test.txt")).read().split()})
        want, wl = [], []
        for l in lines:
            c = np.load(os.path.join(sn, "shapenet_pc", l)).astype(np.float32)
            want.append(normalize(c[fps(c, P)]))
            wl.append(allsyn.index(l.split("-")[0]))
        close("shapenet55 points", pts, np.stack(want), 1e-5, bad)
        if not np.array_equal(lab, np.array(wl, np.int32)):
            bad.append(f"shapenet55 labels {lab} != {wl}")
        if attrs.get("class_names", "").split("\n") != allsyn:
            bad.append(f"shapenet55 class names {attrs.get('class_names')!r} != {allsyn}")
    elif fmt == "off":
        # Exact: the same sampling re-implemented here (rng.c ported to Python) must give the same
        # points. Semantic: those reference points lie on the mesh, and the box mesh's two triangles
        # (areas 3 and 1) get 3/4 and 1/4 of the points.
        order = [("box", "box_0001.off"), ("chair", "chair_0001.off"), ("chair", "chair_0002.off")]
        if attrs.get("class_names", "").split("\n") != ["box", "chair"]:
            bad.append(f"off class names {attrs.get('class_names')!r}")
        if not np.array_equal(lab, np.array([0, 1, 1], np.int32)):
            bad.append(f"off labels {lab}")
        seed = int(attrs.get("seed", -1))
        want = []
        for i, (cls, name) in enumerate(order):
            v, tris = read_off(os.path.join(d, "ModelNet40", cls, "train", name))
            raw = sample_mesh(v, tris, P, seed, i)
            dmax = max(min(point_triangle_distance(q, *[v[t] for t in tri]) for tri in tris) for q in raw)
            if dmax > 1e-9:
                bad.append(f"off reference sample {i} ({name}): a point is {dmax} off the surface")
            if name == "box_0001.off":
                share = np.mean(raw[:, 1] > 0)
                if abs(share - 0.75) > 0.05:
                    bad.append(f"off area weighting: share {share} on the area-3 triangle, want 0.75")
            want.append(normalize(raw.astype(np.float32)))
        close("off points", pts, np.stack(want), 1e-5, bad)
    for b in bad:
        print("check_convert:", b)
    return 1 if bad else 0


def read_off(path):
    """Independent OFF reader for the fixtures: header (maybe glued to the counts), comments,
    polygons fan-triangulated, trailing colour values ignored."""
    lines = [l.split("#")[0].strip() for l in open(path).read().splitlines()]
    lines = [l for l in lines if l]
    head = lines[0][3:].strip()
    rest = lines[1:] if head else lines[2:]
    nv, nf = [int(t) for t in (head or lines[1]).split()[:2]]
    v = np.array([[float(t) for t in l.split()[:3]] for l in rest[:nv]])
    tris = []
    for l in rest[nv:nv + nf]:
        t = [int(x) for x in l.split()]
        ids = t[1:1 + t[0]]
        tris += [(ids[0], ids[j], ids[j + 1]) for j in range(1, len(ids) - 1)]
    return v, tris


M64 = (1 << 64) - 1


def splitmix64(state):
    state[0] = (state[0] + 0x9E3779B97F4A7C15) & M64
    z = state[0]
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def rng_mix(a, b):
    x = [(a * 0xD1B54A32D192ED03 + 0x8CB92BA72F3D8DD7) & M64]
    h = splitmix64(x)
    x = [h ^ ((b * 0xABC98388FB8FAC03) & M64)]
    return splitmix64(x)


class Rng:
    """xoshiro256** seeded through splitmix64 from (seed, stream), as documented in rng.h."""

    def __init__(self, seed, stream):
        x = [rng_mix(seed, stream)]
        self.s = [splitmix64(x) for _ in range(4)]

    def u64(self):
        s = self.s
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M64
        result = (rotl((s[1] * 5) & M64, 7) * 9) & M64
        t = (s[1] << 17) & M64
        s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def uniform(self):
        return (self.u64() >> 11) * 2.0 ** -53


def sample_mesh(v, tris, P, seed, stream):
    """Area-weighted uniform surface sampling: triangle by cumulative area, uniform barycentric."""
    areas = np.array([0.5 * np.linalg.norm(np.cross(v[b] - v[a], v[c] - v[a])) for a, b, c in tris])
    cum = np.cumsum(areas)
    r = Rng(seed, stream)
    out = np.zeros((P, 3))
    for i in range(P):
        x = r.uniform() * cum[-1]
        t = int(np.searchsorted(cum, x, side="right"))
        a, b, c = (v[k] for k in tris[t])
        u, w = r.uniform(), r.uniform()
        if u + w > 1:
            u, w = 1 - u, 1 - w
        out[i] = a + u * (b - a) + w * (c - a)
    return out


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
