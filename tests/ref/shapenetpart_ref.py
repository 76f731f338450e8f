"""shapenetpart_ref.py -- a tiny ShapeNetPart fixture in the real layout, and the check of what
`i2pmae convert --format shapenetpart` and `i2pmae synth --parts` wrote (h5py / numpy).

  shapenetpart_ref.py make DIR            DIR/shapenetcore_partanno_segmentation_benchmark_v0_normal
  shapenetpart_ref.py bad DIR KIND        a copy of the fixture with one defect (KIND: part, missing,
                                          columns, empty)
  shapenetpart_ref.py check DIR SPLIT OUT.h5 P    the converted file against the fixture
  shapenetpart_ref.py check-synth OUT.h5  the parts-labelled synthetic set
"""
import json
import os
import shutil
import sys

import numpy as np

CATS = [("Airplane", "02691156", 4), ("Bag", "02773838", 2), ("Cap", "02954340", 2), ("Car", "02958343", 4),
        ("Chair", "03001627", 4), ("Earphone", "03261776", 3), ("Guitar", "03467517", 3), ("Knife", "03624134", 2),
        ("Lamp", "03636649", 4), ("Laptop", "03642806", 2), ("Motorbike", "03790512", 6), ("Mug", "03797390", 2),
        ("Pistol", "03948459", 3), ("Rocket", "04099429", 3), ("Skateboard", "04225987", 3), ("Table", "04379243", 3)]
FIRST = np.cumsum([0] + [c[2] for c in CATS])
ROOT = "shapenetcore_partanno_segmentation_benchmark_v0_normal"
# (category, model, rows) per split; shapes of 3 categories, ~40-60 points each
SPLITS = {"train": [(0, "a001", 50), (4, "c001", 41), (15, "t001", 60), (0, "a002", 45)],
          "val": [(4, "c002", 44)],
          "test": [(15, "t002", 52), (0, "a003", 47), (4, "c003", 39)]}


def make(d):
    root = os.path.join(d, ROOT)
    os.makedirs(os.path.join(root, "train_test_split"), exist_ok=True)
    with open(os.path.join(root, "synsetoffset2category.txt"), "w") as f:
        for name, syn, _ in CATS:
            f.write("%s\t%s\n" % (name, syn))
    rng = np.random.default_rng(0)
    for split, shapes in SPLITS.items():
        lst = []
        for c, model, n in shapes:
            syn = CATS[c][1]
            os.makedirs(os.path.join(root, syn), exist_ok=True)
            xyz = rng.normal(0, 0.3, (n, 3)) + rng.uniform(-1, 1, 3)
            nrm = rng.normal(0, 1, (n, 3))
            part = rng.integers(FIRST[c], FIRST[c + 1], n)
            with open(os.path.join(root, syn, model + ".txt"), "w") as f:
                for i in range(n):
                    f.write("%.6f %.6f %.6f %.6f %.6f %.6f %.6f\n" % (*xyz[i], *nrm[i], float(part[i])))
            lst.append("shape_data/%s/%s" % (syn, model))
        with open(os.path.join(root, "train_test_split", "shuffled_%s_file_list.json" % split), "w") as f:
            json.dump(lst, f)
    return root


def bad(d, kind):
    root = make(d)
    syn = CATS[0][1]
    path = os.path.join(root, syn, "a002.txt")
    lines = open(path).read().splitlines()
    if kind == "part":      # a Chair part (12) in an Airplane shape
        v = lines[5].split(); v[6] = "12.000000"; lines[5] = " ".join(v)
    elif kind == "columns":
        lines[7] = " ".join(lines[7].split()[:6])
    elif kind == "empty":
        lines = []
    elif kind == "missing":
        os.remove(path)
        return
    open(path, "w").write("\n".join(lines) + ("\n" if lines else ""))


def read_shape(root, c, model):
    a = np.loadtxt(os.path.join(root, CATS[c][1], model + ".txt"), dtype=np.float64).reshape(-1, 7)
    xyz = a[:, :3].astype(np.float32).astype(np.float64)
    xyz = xyz - xyz.mean(0)
    xyz = xyz / np.sqrt((xyz ** 2).sum(1)).max()
    return xyz, a[:, 6].astype(np.int64)


def check(d, split, out, P):
    import h5py
    root = os.path.join(d, ROOT)
    shapes = SPLITS["train"] + SPLITS["val"] if split == "trainval" else SPLITS[split]
    f = h5py.File(out, "r")
    pts, lab, seg = f["points"][:], f["label"][:], f["seg"][:]
    assert pts.shape == (len(shapes), P, 3) and seg.shape == (len(shapes), P), (pts.shape, seg.shape)
    assert f.attrs["n_parts"] == 50 and f.attrs["n_classes"] == 16
    assert f.attrs["parts_per_class"] == " ".join(str(c[2]) for c in CATS), f.attrs["parts_per_class"]
    assert f.attrs["class_names"].split("\n") == [c[0] for c in CATS]
    for i, (c, model, n) in enumerate(shapes):
        assert lab[i] == c, (i, lab[i], c)
        xyz, part = read_shape(root, c, model)
        # every output point is a normalised source point (float32 tolerance) with its part label
        dist = ((pts[i][:, None, :] - xyz[None, :, :]) ** 2).sum(-1)
        j = dist.argmin(1)
        assert dist[np.arange(P), j].max() < 1e-10, dist[np.arange(P), j].max()
        assert (part[j] == seg[i]).all()
        assert len(np.unique(j)) > n // 3  # drawn over the shape, not one point repeated
    print("ok: %d shapes x %d points" % (len(shapes), P))


def check_synth(out):
    import h5py
    f = h5py.File(out, "r")
    pts, lab, seg = f["points"][:], f["label"][:], f["seg"][:]
    counts = [int(x) for x in f.attrs["parts_per_class"].split()]
    first = np.cumsum([0] + counts)
    assert f.attrs["n_parts"] == first[-1] == 14 and len(counts) == f.attrs["n_classes"] == 6
    assert (lab == np.arange(len(lab)) % 6).all()
    for i in range(len(lab)):
        c = lab[i]
        assert seg[i].min() >= first[c] and seg[i].max() < first[c + 1]
        assert len(np.unique(seg[i])) == counts[c], (i, np.unique(seg[i]))  # every part present
        assert abs(np.sqrt((pts[i] ** 2).sum(1)).max() - 1) < 1e-5 and np.abs(pts[i].mean(0)).max() < 1e-5
        # parts are spatially coherent: a point's part is mostly its nearest neighbour's
        d = ((pts[i][:, None] - pts[i][None]) ** 2).sum(-1)
        np.fill_diagonal(d, 1e9)
        assert (seg[i][d.argmin(1)] == seg[i]).mean() > 0.8
    print("ok: %d samples" % len(lab))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "make":
        make(sys.argv[2])
    elif cmd == "bad":
        bad(sys.argv[2], sys.argv[3])
    elif cmd == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
    elif cmd == "check-synth":
        check_synth(sys.argv[2])
