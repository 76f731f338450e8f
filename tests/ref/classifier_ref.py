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
import argparse
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from model3d_ref import BN, Merge, PointNetEmbed, PosMLP, bn_buffers  # noqa: F401
from model3d_ref_data import config, gather_rows, tokenize

FAR = -1e5


class Attention(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(c, 3 * c, bias=False)
        self.proj = nn.Linear(c, c)

    def forward(self, x, pair_bias):
        """x (B,N,C); pair_bias None or (B,N,N), added to every head's scaled scores."""
        B, N, C = x.shape
        hd = C // self.heads
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * hd ** -0.5
        if pair_bias is not None:
            att = att + pair_bias[:, None, :, :]
        att = att.softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c, 4 * c)
        self.fc2 = nn.Linear(4 * c, c)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


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


def smooth_ce(logits, labels, eps):
    n = logits.shape[1]
    one_hot = torch.zeros_like(logits).scatter(1, labels.view(-1, 1), 1)
    t = one_hot * (1 - eps) + (1 - one_hot) * eps / (n - 1)
    return -(t * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class Classifier(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, h = cfg["dims"], cfg["embed_hidden"]
        self.embed0 = PointNetEmbed(h, d[0])
        self.merge1 = Merge(d[0], d[1])
        self.merge2 = Merge(d[1], d[2])
        self.encoder = nn.ModuleList([Stage(d[s], cfg["depths"][s], cfg["heads"]) for s in range(3)])
        self.norm = nn.LayerNorm(d[2], eps=1e-5)
        dd = 2 * d[2] if cfg["pooling"] == "concat" else d[2]
        self.head = Head(dd, cfg["head_hidden"], cfg["n_classes"])

    def perturb_for_test(self, gen):
        """Rank-1 parameters N(0,0.1) around their init, BN running means N(0,0.1), variances
        U(0.5,1.5): every tensor takes part in the comparison."""
        with torch.no_grad():
            for _, p in self.named_parameters():
                if p.dim() == 1:
                    p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            for name, b in self.named_buffers():
                if name.endswith("running_mean"):
                    b.copy_(0.1 * torch.randn(b.shape, generator=gen, dtype=b.dtype))
                elif name.endswith("running_var"):
                    b.copy_(0.5 + torch.rand(b.shape, generator=gen, dtype=b.dtype))

    def forward(self, points, tok, drop_path=None, dropout=None):
        """points (B,P,3) float32 numpy; drop_path (B,n_blocks,2), dropout (B,2,H) tensors or None
        (eval). Returns (logits, activations)."""
        cfg = self.cfg
        dtype = self.norm.weight.dtype
        B = points.shape[0]
        xyz = [torch.from_numpy(tok["xyz%d" % s]).to(dtype) for s in range(3)]
        nb0 = torch.from_numpy(gather_rows(points, tok["knn0"])).to(dtype) - xyz[0][:, :, None, :]
        acts, masked = {}, []
        x = self.embed0(nb0.reshape(-1, cfg["k"][0], 3)).reshape(B, -1, cfg["dims"][0])
        blk_i = 0
        for s in range(3):
            if s > 0:
                knn = torch.from_numpy(tok["knn%d" % s])
                nb = torch.stack([x[b, knn[b]] for b in range(B)])
                merge = self.merge1 if s == 1 else self.merge2
                x = merge(nb.reshape(-1, nb.shape[2], nb.shape[3])).reshape(B, nb.shape[1], -1)
            bias = None
            if cfg["radius"][s] > 0:
                far = torch.cdist(xyz[s].double(), xyz[s].double()) >= cfg["radius"][s]
                masked.append(far.double().mean().item())
                bias = far.to(dtype) * FAR
            else:
                masked.append(0.0)
            stage = self.encoder[s]
            pos = stage.pos(xyz[s])
            for blk in stage.blocks:
                ka = drop_path[:, blk_i, 0] if drop_path is not None else None
                km = drop_path[:, blk_i, 1] if drop_path is not None else None
                x = blk(x + pos, bias, ka, km)
                blk_i += 1
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
    torch.manual_seed(seed)
    model = Classifier(cfg)
    model.perturb_for_test(torch.Generator().manual_seed(seed + 1))
    dtype = torch.float64 if double else torch.float32
    model.to(dtype)
    model.train()
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1, 1, (B, cfg["points"], 3)).astype(np.float32)
    labels = rng.integers(0, cfg["n_classes"], B).astype(np.int32)
    nb = sum(cfg["depths"])
    rates = [cfg["drop_path"] * i / (nb - 1) for i in range(nb)]
    # forced masks: drop with probability 0.3 (more than the rates, so that drops occur at B 4)
    keep = rng.uniform(0, 1, (B, nb, 2)) >= 0.3
    drop_path = (keep / (1.0 - np.asarray(rates))[None, :, None]).astype(np.float32)
    dropout = ((rng.uniform(0, 1, (B, 2, cfg["head_hidden"])) >= cfg["dropout"]) /
               (1.0 - cfg["dropout"])).astype(np.float32)
    tok = tokenize(points, cfg)

    def f32(t):
        return t.detach().to(torch.float32).numpy()

    g = f.create_group(name)
    for k in ("points", "heads", "n_classes", "head_hidden", "groups", "k", "dims", "depths", "embed_hidden"):
        g["config/" + k] = np.atleast_1d(np.asarray(cfg[k], np.int32))
    for k in ("drop_path", "dropout", "smoothing", "radius"):
        g["config/" + k] = np.atleast_1d(np.asarray(cfg[k], np.float64))
    g["config/pooling"] = np.array([1 if cfg["pooling"] == "concat" else 0], np.int32)  # cls_pooling
    g["config/batch"] = np.array([B], np.int32)
    g.attrs["computed_in"] = "float64" if double else "float32"
    for n, p in model.named_parameters():
        g["params/" + n] = f32(p)
    for n, b in bn_buffers(model):
        g["buffers/" + n] = f32(b)
    g["inputs/points"] = points
    g["inputs/labels"] = labels
    g["inputs/drop_path"] = drop_path
    g["inputs/dropout"] = dropout

    logits, acts = model(points, tok, torch.from_numpy(drop_path).to(dtype), torch.from_numpy(dropout).to(dtype))
    loss = smooth_ce(logits, torch.from_numpy(labels).long(), cfg["smoothing"])
    loss.backward()
    g["expected/loss"] = np.array([loss.item()], np.float64)
    g["expected/masked_fraction"] = np.asarray(acts["_masked"], np.float64)
    for n, a in acts.items():
        if not n.startswith("_"):
            g["expected/activations/" + n] = f32(a)
    for n, p in model.named_parameters():
        g["expected/grads/" + n] = f32(p.grad)
    for n, b in bn_buffers(model):
        g["expected/buffers/" + n] = f32(b)
    model.eval()
    with torch.no_grad():
        ev, _ = model(points, tok)
    g["expected/eval_logits"] = f32(ev)
    return loss.item(), acts["_masked"]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--double", action="store_true", help="compute in float64")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    import h5py
    with h5py.File(a.out, "w") as f:
        for i, name in enumerate(CASES):
            loss, masked = write_case(f, name, a.seed + 10 * i, a.double)
            print("%s: loss %.6f, masked key fraction per stage %s" % (name, loss, masked))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
