"""partseg_ref.py -- independent PyTorch reference of the part-segmentation network (docs/partseg.md,
Point-M2AE's segmentation model), written from the spec and Point-M2AE's semantics. It writes the
HDF5 file that tests/unit/test_partseg_ref.c compares the C network against.

  partseg_ref.py OUT.h5 [--seed S] [--double]

One case, /seg, on the tiny encoder (groups [16,8,4], 64 points), B 3, local attention on all three
stages, drop path 0.1 with forced masks, head dropout 0.5 with a forced mask. The group holds config/,
params/, buffers/, inputs/ (points, category, seg, drop_path, dropout) and expected/ (loss,
activations, every gradient, BatchNorm buffers after the step, eval logits).

The token embedding / merging and the transformer stages come from classifier_ref.py (already
checked against the C classifier); the stage norms, the 3-NN propagation (its own sort of the squared
distances), the propagation MLPs, the global and category features, the head and the loss are
written here.
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import ref_case
from classifier_ref import FAR, Block, add_encoder, run_blocks, stage_tokens
from model3d_ref import PosMLP
from model3d_ref_data import config, tokenize
from ref_case import f32


class SegStage(nn.Module):
    def __init__(self, c, depth, heads):
        super().__init__()
        self.pos = PosMLP(c)
        self.blocks = nn.ModuleList([Block(c, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(c, eps=1e-5)


class Prop(nn.Module):
    """PointNet++ feature propagation: [xyz | 3-NN interpolation] -> Conv-BN-ReLU x 2."""

    def __init__(self, cin, h, f):
        super().__init__()
        self.conv1 = nn.Linear(cin, h)
        self.bn1 = nn.BatchNorm1d(h)
        self.conv2 = nn.Linear(h, f)
        self.bn2 = nn.BatchNorm1d(f)

    def forward(self, xyz, ctr, feat):
        """xyz (B,N,3), ctr (B,G,3), feat (B,G,C) -> (B,N,F)."""
        B, N, _ = xyz.shape
        d = ((xyz[:, :, None, :] - ctr[:, None, :, :]) ** 2).sum(-1)
        d, idx = d.sort(dim=-1, stable=True)
        d, idx = d[:, :, :3], idx[:, :, :3]
        w = 1.0 / (d + 1e-8)
        w = w / w.sum(-1, keepdim=True)
        interp = torch.stack([(feat[b][idx[b]] * w[b][..., None]).sum(1) for b in range(B)])
        x = torch.cat([xyz, interp], -1).reshape(B * N, -1)
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return x.reshape(B, N, -1)


class Label(nn.Module):
    def __init__(self, k, l):
        super().__init__()
        self.conv = nn.Linear(k, l, bias=False)
        self.bn = nn.BatchNorm1d(l)


class Head(nn.Module):
    def __init__(self, d, h, n):
        super().__init__()
        self.conv1 = nn.Linear(d, h[0])
        self.bn1 = nn.BatchNorm1d(h[0])
        self.conv2 = nn.Linear(h[0], h[1])
        self.bn2 = nn.BatchNorm1d(h[1])
        self.conv3 = nn.Linear(h[1], h[2])
        self.bn3 = nn.BatchNorm1d(h[2])
        self.conv4 = nn.Linear(h[2], n)

    def forward(self, x, mask):
        x = F.relu(self.bn1(self.conv1(x)))
        if mask is not None:
            x = x * mask
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        return self.conv4(x)


class PartSeg(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        add_encoder(self, cfg, SegStage)
        d = cfg["dims"]
        F_ = cfg["prop_out"]
        self.prop = nn.ModuleList([Prop(3 + d[s], cfg["prop_hidden"], F_) for s in range(3)])
        self.label = Label(cfg["n_categories"], cfg["label_dim"])
        self.head = Head(6 * F_ + cfg["label_dim"], cfg["head"], cfg["n_parts"])

    def forward(self, points, category, tok, drop_path=None, dropout=None):
        cfg = self.cfg
        dtype = self.encoder[0].norm.weight.dtype
        B, N = points.shape[0], points.shape[1]
        xyz = [torch.from_numpy(tok["xyz%d" % s]).to(dtype) for s in range(3)]
        pts = torch.from_numpy(points).to(dtype)
        acts, outs = {}, []
        x = None
        blk_i = 0
        for s in range(3):
            x = stage_tokens(self, s, x, points, tok, xyz)
            far = torch.cdist(xyz[s].double(), xyz[s].double()) >= cfg["radius"][s]
            bias = far.to(dtype) * FAR
            stage = self.encoder[s]
            x, blk_i = run_blocks(stage, x, xyz[s], bias, drop_path, blk_i)
            o = stage.norm(x)
            acts["enc%d_out" % s] = o
            outs.append(o)
        props = []
        for s in range(3):
            p = self.prop[s](pts, xyz[s], outs[s])
            acts["prop%d" % s] = p
            props.append(p)
        xcat = torch.cat(props, -1)                                   # (B,N,3F)
        glob = xcat.max(1)[0] + xcat.mean(1)                          # (B,3F)
        acts["global"] = glob
        onehot = F.one_hot(torch.from_numpy(category).long(), cfg["n_categories"]).to(dtype)
        lab = F.leaky_relu(self.label.bn(self.label.conv(onehot)), 0.2)  # (B,L)
        acts["label"] = lab
        feat = torch.cat([glob[:, None, :].expand(B, N, -1), lab[:, None, :].expand(B, N, -1), xcat], -1)
        mask = dropout.reshape(B * N, -1) if dropout is not None else None
        logits = self.head(feat.reshape(B * N, -1), mask)
        acts["logits"] = logits
        return logits, acts


def case_config():
    cfg = config("tiny")
    cfg.update(depths=[1, 1, 2], drop_path=0.1, radius=[1.3, 1.5, 2.2], n_categories=3, n_parts=7,
               parts_per_class=[2, 3, 2], prop_hidden=10, prop_out=6, label_dim=5, head=[12, 10, 8],
               dropout=0.5)
    return cfg


def write_case(f, seed, double):
    cfg = case_config()
    B = 3
    model, dtype = ref_case.make_model(PartSeg, cfg, seed, double)
    rng = np.random.default_rng(seed)
    N = cfg["points"]
    points = rng.uniform(-1, 1, (B, N, 3)).astype(np.float32)
    category = np.array([0, 1, 2], np.int32)
    first = np.cumsum([0] + cfg["parts_per_class"])
    seg = np.stack([rng.integers(first[c], first[c + 1], N) for c in category]).astype(np.int32)
    drop_path = ref_case.forced_drop_path(rng, cfg, B)
    dropout = ((rng.uniform(0, 1, (B, N, cfg["head"][0])) >= cfg["dropout"]) / (1.0 - cfg["dropout"])).astype(np.float32)
    tok = tokenize(points, cfg)

    g = f.create_group("seg")
    ref_case.write_config(g, cfg, ("points", "heads", "groups", "k", "dims", "depths", "embed_hidden", "n_categories",
                                   "n_parts", "prop_hidden", "prop_out", "label_dim", "head"),
                          ("drop_path", "dropout", "radius"), B)
    ref_case.write_state(g, model)
    g["inputs/points"] = points
    g["inputs/category"] = category
    g["inputs/seg"] = seg
    g["inputs/drop_path"] = drop_path
    g["inputs/dropout"] = dropout
    logits, acts = model(points, category, tok, torch.from_numpy(drop_path).to(dtype),
                         torch.from_numpy(dropout).to(dtype))
    loss = F.cross_entropy(logits, torch.from_numpy(seg).long().reshape(-1))
    loss.backward()
    ref_case.write_step_results(g, model, loss, acts)
    model.eval()
    with torch.no_grad():
        ev, _ = model(points, category, tok)
    g["expected/eval_logits"] = f32(ev)
    return loss.item()


def write_file(f, seed, double):
    print("seg: loss %.6f" % write_case(f, seed, double))


if __name__ == "__main__":
    sys.exit(ref_case.main(sys.argv[1:], __doc__, write_file))
