"""classifier_ref.py -- independent PyTorch reference of the fine-tuning classifier (docs/finetune.md,
i2pmae-spec.md section 8 "Fine-tuning"), written from the spec and the official model's semantics.
It writes the HDF5 file that tests/unit/test_classifier_ref.c compares the C classifier against.

  classifier_ref.py OUT.h5 [--seed S] [--double]

Cases (one group each, all on the tiny encoder of docs/model3d.md with B 4):
  /mm   mean+max pooling, label smoothing 0.2, local attention on all three stages
  /cat  concat(mean, max) pooling, plain cross-entropy, local attention on stages 0 and 2 only
Each case holds its configuration (config/: one small dataset per field, pooling as the cls_pooling
enum value), params/, buffers/, inputs/ (points, labels and the
forced stochastic-depth and dropout masks) and expected/ (loss, logits, activations, every gradient,
BatchNorm buffers after the step, eval logits after the step).

The token embedding / merging layers and the positional MLP come from model3d_ref.py (already
checked against the C pre-training network); the transformer block with a per-(query, key) bias and
per-branch drop-path masks, the fresh norm, the pooling, the head and the loss are written here.
The smoothing follows the official I2P-MAE code: target 1 - eps at the label, eps / (n - 1) elsewhere.
"""
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import model3d_ref
import ref_case
from model3d_ref import BN, Merge, Mlp, PointNetEmbed, PosMLP  # noqa: F401
from model3d_ref_data import config, gather_rows, tokenize
from ref_case import f32

FAR = -1e5


class Attention(model3d_ref.Attention):
    def forward(self, x, pair_bias):
        """x (B,N,C); pair_bias None or (B,N,N), added to every head's scaled scores."""
        return self.attend(x, pair_bias[:, None, :, :] if pair_bias is not None else None)


class Block(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(c, eps=1e-5)
        self.attn = Attention(c, heads)
        self.norm2 = nn.LayerNorm(c, eps=1e-5)
        self.mlp = Mlp(c)

    def forward(self, x, pair_bias, keep_attn, keep_mlp):
        """keep_* (B,) per-sample residual scales (0 or 1/(1-rate)) or None (eval)."""
        a = self.attn(self.norm1(x), pair_bias)
        if keep_attn is not None:
            a = a * keep_attn[:, None, None]
        x = x + a
        m = self.mlp(self.norm2(x))
        if keep_mlp is not None:
            m = m * keep_mlp[:, None, None]
        return x + m


class Stage(nn.Module):
    def __init__(self, c, depth, heads):
        super().__init__()
        self.pos = PosMLP(c)
        self.blocks = nn.ModuleList([Block(c, heads) for _ in range(depth)])


class Head(nn.Module):
    def __init__(self, d, h, n):
        super().__init__()
        self.fc1 = nn.Linear(d, h)
        self.bn1 = nn.BatchNorm1d(h)
        self.fc2 = nn.Linear(h, h)
        self.bn2 = nn.BatchNorm1d(h)
        self.fc3 = nn.Linear(h, n)

    def forward(self, x, m1, m2):
        x = F.relu(self.bn1(self.fc1(x)))
        if m1 is not None:
            x = x * m1
        x = F.relu(self.bn2(self.fc2(x)))
        if m2 is not None:
            x = x * m2
        return self.fc3(x)


def add_encoder(model, cfg, stage):
    """Adds model.embed0, merge1, merge2 and encoder (stage(c, depth, heads) for the three stages),
    in this order: the order in which they draw their initial parameters."""
    d, h = cfg["dims"], cfg["embed_hidden"]
    model.embed0 = PointNetEmbed(h, d[0])
    model.merge1 = Merge(d[0], d[1])
    model.merge2 = Merge(d[1], d[2])
    model.encoder = nn.ModuleList([stage(d[s], cfg["depths"][s], cfg["heads"]) for s in range(3)])


def stage_tokens(model, s, x, points, tok, xyz):
    """The tokens (B,G_s,C_s) entering encoder stage s of model (embed0, merge1, merge2): embed0 of
    the points' k-neighbourhoods around the centres xyz[0] for s 0, else merge s of the previous
    stage's output x over the kNN of tok["knn<s>"]."""
    cfg, B = model.cfg, points.shape[0]
    if s == 0:
        nb0 = torch.from_numpy(gather_rows(points, tok["knn0"])).to(xyz[0].dtype) - xyz[0][:, :, None, :]
        return model.embed0(nb0.reshape(-1, cfg["k"][0], 3)).reshape(B, -1, cfg["dims"][0])
    knn = torch.from_numpy(tok["knn%d" % s])
    nb = torch.stack([x[b, knn[b]] for b in range(B)])
    merge = model.merge1 if s == 1 else model.merge2
    return merge(nb.reshape(-1, nb.shape[2], nb.shape[3])).reshape(B, nb.shape[1], -1)


def run_blocks(stage, x, xyz, bias, drop_path, blk_i):
    """The blocks of one encoder stage (pos MLP of the centres xyz added before each); drop_path
    (B,n_blocks,2) forced residual scales or None (eval), blk_i the index of the stage's first
    block. Returns (x, index after its last block)."""
    pos = stage.pos(xyz)
    for blk in stage.blocks:
        ka = drop_path[:, blk_i, 0] if drop_path is not None else None
        km = drop_path[:, blk_i, 1] if drop_path is not None else None
        x = blk(x + pos, bias, ka, km)
        blk_i += 1
    return x, blk_i


def smooth_ce(logits, labels, eps):
    n = logits.shape[1]
    one_hot = torch.zeros_like(logits).scatter(1, labels.view(-1, 1), 1)
    t = one_hot * (1 - eps) + (1 - one_hot) * eps / (n - 1)
    return -(t * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class Classifier(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        add_encoder(self, cfg, Stage)
        d = cfg["dims"]
        self.norm = nn.LayerNorm(d[2], eps=1e-5)
        dd = 2 * d[2] if cfg["pooling"] == "concat" else d[2]
        self.head = Head(dd, cfg["head_hidden"], cfg["n_classes"])

    def forward(self, points, tok, drop_path=None, dropout=None):
        """points (B,P,3) float32 numpy; drop_path (B,n_blocks,2), dropout (B,2,H) tensors or None
        (eval). Returns (logits, activations)."""
        cfg = self.cfg
        dtype = self.norm.weight.dtype
        xyz = [torch.from_numpy(tok["xyz%d" % s]).to(dtype) for s in range(3)]
        acts, masked = {}, []
        x = None
        blk_i = 0
        for s in range(3):
            x = stage_tokens(self, s, x, points, tok, xyz)
            bias = None
            if cfg["radius"][s] > 0:
                far = torch.cdist(xyz[s].double(), xyz[s].double()) >= cfg["radius"][s]
                masked.append(far.double().mean().item())
                bias = far.to(dtype) * FAR
            else:
                masked.append(0.0)
            x, blk_i = run_blocks(self.encoder[s], x, xyz[s], bias, drop_path, blk_i)
            acts["enc%d_out" % s] = x
        x = self.norm(x)
        acts["normed"] = x
        mean, mx = x.mean(1), x.max(1)[0]
        pooled = torch.cat([mean, mx], dim=1) if cfg["pooling"] == "concat" else mean + mx
        acts["pooled"] = pooled
        m1 = dropout[:, 0] if dropout is not None else None
        m2 = dropout[:, 1] if dropout is not None else None
        logits = self.head(pooled, m1, m2)
        acts["logits"] = logits
        acts["_masked"] = masked
        return logits, acts


CASES = {
    "mm": dict(pooling="mean+max", smoothing=0.2, radius=[1.3, 1.5, 2.2], n_classes=5),
    "cat": dict(pooling="concat", smoothing=0.0, radius=[1.2, 0.0, 2.0], n_classes=4),
}


def case_config(name):
    cfg = config("tiny")
    cfg.update(depths=[1, 1, 2], drop_path=0.1, head_hidden=8, dropout=0.5)
    cfg.update(CASES[name])
    return cfg


def write_case(f, name, seed, double):
    cfg = case_config(name)
    B = 4
    model, dtype = ref_case.make_model(Classifier, cfg, seed, double)
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1, 1, (B, cfg["points"], 3)).astype(np.float32)
    labels = rng.integers(0, cfg["n_classes"], B).astype(np.int32)
    drop_path = ref_case.forced_drop_path(rng, cfg, B)
    dropout = ((rng.uniform(0, 1, (B, 2, cfg["head_hidden"])) >= cfg["dropout"]) /
               (1.0 - cfg["dropout"])).astype(np.float32)
    tok = tokenize(points, cfg)

    g = f.create_group(name)
    ref_case.write_config(g, cfg, ("points", "heads", "n_classes", "head_hidden", "groups", "k", "dims", "depths",
                                   "embed_hidden"), ("drop_path", "dropout", "smoothing", "radius"), B)
    g["config/pooling"] = np.array([1 if cfg["pooling"] == "concat" else 0], np.int32)  # cls_pooling
    g.attrs["computed_in"] = "float64" if double else "float32"
    ref_case.write_state(g, model)
    g["inputs/points"] = points
    g["inputs/labels"] = labels
    g["inputs/drop_path"] = drop_path
    g["inputs/dropout"] = dropout

    logits, acts = model(points, tok, torch.from_numpy(drop_path).to(dtype), torch.from_numpy(dropout).to(dtype))
    loss = smooth_ce(logits, torch.from_numpy(labels).long(), cfg["smoothing"])
    loss.backward()
    ref_case.write_step_results(g, model, loss, acts)
    g["expected/masked_fraction"] = np.asarray(acts["_masked"], np.float64)
    model.eval()
    with torch.no_grad():
        ev, _ = model(points, tok)
    g["expected/eval_logits"] = f32(ev)
    return loss.item(), acts["_masked"]


def write_file(f, seed, double):
    for i, name in enumerate(CASES):
        loss, masked = write_case(f, name, seed + 10 * i, double)
        print("%s: loss %.6f, masked key fraction per stage %s" % (name, loss, masked))


if __name__ == "__main__":
    sys.exit(ref_case.main(sys.argv[1:], __doc__, write_file))
