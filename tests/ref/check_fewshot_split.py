#!/usr/bin/python3
"""check_fewshot_split.py INPUT SPLIT WAY SHOT QUERY -- the properties of a few-shot split file
(docs/fewshot.md), checked with h5py against the input: one OK / NOT OK line per property; exit 1
if any is NOT OK.

  counts     exactly SHOT training and QUERY test clouds per new label 0..WAY-1, nothing else
  disjoint   no input row in both /train and /test, none twice
  classes    WAY distinct original classes (root class_ids), ascending; the input label of every
             cloud is class_ids[new label]
  clouds     every cloud equals the input cloud at its /index row, bit for bit
  names      class_names of both groups = the input's names of class_ids; n_classes = WAY
  layout     the canonical layout per group (points (n,P,3) float32 chunked (1,P,3), label int32)
"""
import sys

import h5py
import numpy as np


def main(inp, split, way, shot, query):
    ok = True

    def report(name, cond, why=""):
        nonlocal ok
        print(f"{'OK' if cond else 'NOT OK'} {name}{'' if cond else ': ' + why}")
        ok &= bool(cond)

    with h5py.File(inp, "r") as fi, h5py.File(split, "r") as fs:
        pts, lab = fi["points"][:], fi["label"][:]
        names = fi.attrs["class_names"]
        names = (names.decode() if isinstance(names, bytes) else names).split("\n")
        ids = [int(x) for x in str(fs.attrs["class_ids"]).split(",")]
        report("classes", len(ids) == way and ids == sorted(set(ids)), f"class_ids {ids}")
        rows = {}
        for g, per in (("train", shot), ("test", query)):
            grp = fs[g]
            p, l, x = grp["points"], grp["label"][:], grp["index"][:]
            report(f"layout {g}", p.dtype == np.float32 and p.shape == (way * per,) + pts.shape[1:]
                   and p.chunks == (1,) + pts.shape[1:] and grp["label"].dtype == np.int32,
                   f"points {p.dtype} {p.shape} chunks {p.chunks}, label {grp['label'].dtype}")
            counts = np.bincount(l, minlength=way)
            report(f"counts {g}", l.min() >= 0 and l.max() < way and (counts == per).all(),
                   f"per label {counts.tolist()}, want {per}")
            report(f"classes {g}", all(lab[x[i]] == ids[l[i]] for i in range(len(l))),
                   "an input label differs from class_ids[label]")
            report(f"clouds {g}", np.array_equal(p[:], pts[x]), "a cloud differs from its input row")
            gn = grp.attrs["class_names"]
            gn = (gn.decode() if isinstance(gn, bytes) else gn).split("\n")
            report(f"names {g}", gn == [names[i] for i in ids] and int(grp.attrs["n_classes"]) == way,
                   f"{gn} n_classes {grp.attrs['n_classes']}")
            rows[g] = x
        both = np.concatenate([rows["train"], rows["test"]])
        report("disjoint", len(np.unique(both)) == len(both),
               f"{len(both) - len(np.unique(both))} rows repeated")
    return 0 if ok else 1


if __name__ == "__main__":
    a = sys.argv[1:]
    sys.exit(main(a[0], a[1], int(a[2]), int(a[3]), int(a[4])))
