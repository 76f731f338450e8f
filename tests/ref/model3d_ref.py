"""model3d_ref.py -- independent PyTorch reference of the I2P-MAE 3D network (docs/model3d.md).

Written from docs/model3d.md and i2pmae-spec.md sections 5-7 only. It writes the HDF5 reference file
that the C tests (src/model3d*.c) compare against, and times the reference training step for
`make bench`.

  model3d_ref.py OUT.h5 [--config tiny|spec] [--batch B] [--seed S] [--double]
  model3d_ref.py --bench [--batch 32] [--steps 1] [--warmup 1] [--threads 2] [--points 2048]

Everything is deterministic: numpy default_rng(seed) for inputs, torch.manual_seed(seed) for the
parameters. --double runs the network in float64 (the file still stores float32 inputs/params).
"""
import argparse
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from model3d_ref_data import (CONFIG_FIELDS, Rng, config, draw_masks, draw_visible, gather_rows,  # noqa: F401
                              make_inputs, n_visible, point_features, propagate_mask, tokenize)
from ref_case import bn_buffers, f32, make_model, perturb_for_test  # noqa: F401 (longrun_ref, model3d_ref_check)

# ---------------------------------------------------------------------------------------------
# Layers. Linear == Conv1d with kernel 1 (weights (out,in)). BatchNorm over all leading positions.

class BN(nn.BatchNorm1d):
    """BatchNorm1d over the last dim of (..., C): statistics over all leading positions."""

    def forward(self, x):
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class PointNetEmbed(nn.Module):
    """embed0: (N,k,3) neighbourhoods -> (N,dims0) tokens."""

    def __init__(self, h, cout):
        super().__init__()
        self.conv1 = nn.Linear(3, h[0])
        self.bn1 = BN(h[0])
        self.conv2 = nn.Linear(h[0], h[1])
        self.conv3 = nn.Linear(2 * h[1], h[2])
        self.bn2 = BN(h[2])
        self.conv4 = nn.Linear(h[2], cout)

    def forward(self, x):
        y = self.conv2(F.relu(self.bn1(self.conv1(x))))                     # (N,k,h1)
        g = y.max(dim=1, keepdim=True)[0].expand_as(y)
        y = torch.cat([g, y], dim=-1)                                        # (N,k,2h1) global first
        y = self.conv4(F.relu(self.bn2(self.conv3(y))))                      # (N,k,cout)
        return y.max(dim=1)[0]


class Merge(nn.Module):
    """merge s: (N,k,Cin) neighbour tokens -> (N,Cout)."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Linear(cin, cin)
        self.bn1 = BN(cin)
        self.conv2 = nn.Linear(cin, cin)
        self.conv3 = nn.Linear(2 * cin, cout)
        self.bn2 = BN(cout)
        self.conv4 = nn.Linear(cout, cout)

    def forward(self, x):
        y = self.conv2(F.relu(self.bn1(self.conv1(x))))
        g = y.max(dim=1, keepdim=True)[0].expand_as(y)
        y = torch.cat([g, y], dim=-1)
        y = self.conv4(F.relu(self.bn2(self.conv3(y))))
        return y.max(dim=1)[0]


class PosMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(3, c)
        self.fc2 = nn.Linear(c, c)

    def forward(self, xyz):
        return self.fc2(F.gelu(self.fc1(xyz)))


class Attention(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(c, 3 * c, bias=False)
        self.proj = nn.Linear(c, c)

    def forward(self, x, key_add):
        """x (B,N,C); key_add None or (B,N) additive key mask (0 valid, -1e5 padded)."""
        return self.attend(x, key_add[:, None, None, :] if key_add is not None else None)

    def attend(self, x, bias):
        """x (B,N,C); bias None or broadcast to the scaled scores (B,H,N,N) and added before the softmax."""
        B, N, C = x.shape
        hd = C // self.heads
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                                     # (B,H,N,hd)
        att = (q @ k.transpose(-2, -1)) * hd ** -0.5
        if bias is not None:
            att = att + bias
        att = att.softmax(dim=-1)
        return self.proj((att @ v).transpose(1, 2).reshape(B, N, C))


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c, 4 * c)
        self.fc2 = nn.Linear(4 * c, c)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


def drop_path(x, rate, training):
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    m = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * m / keep


class Block(nn.Module):
    def __init__(self, c, heads, dp=0.0):
        super().__init__()
        self.dp = dp
        self.norm1 = nn.LayerNorm(c, eps=1e-5)
        self.attn = Attention(c, heads)
        self.norm2 = nn.LayerNorm(c, eps=1e-5)
        self.mlp = Mlp(c)

    def forward(self, x, key_add=None):
        x = x + drop_path(self.attn(self.norm1(x), key_add), self.dp, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.dp, self.training)


class Stage(nn.Module):
    """An encoder stage or decoder stage 0: pos MLP added before every block, optional final norm."""

    def __init__(self, c, depth, heads, dps, norm=True):
        super().__init__()
        self.pos = PosMLP(c)
        self.blocks = nn.ModuleList([Block(c, heads, dps[i]) for i in range(depth)])
        if norm:
            self.norm = nn.LayerNorm(c, eps=1e-5)

    def forward(self, x, xyz, key_add=None):
        for blk in self.blocks:
            x = blk(x + self.pos(xyz), key_add)
        return x


class Interp(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Linear(cin, cout)
        self.bn = BN(cout)


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Linear(c, c)
        self.bn1 = BN(c)
        self.conv2 = nn.Linear(c, c)
        self.bn2 = BN(c)

    def forward(self, x):
        y = self.bn2(self.conv2(F.gelu(self.bn1(self.conv1(x)))))
        return F.gelu(x + y)


class DecoderUp(nn.Module):
    """Decoder stage 1: interpolation conv, residual block, pos + blocks, LayerNorm."""

    def __init__(self, cin, cskip, c, depth, heads):
        super().__init__()
        self.interp = Interp(cin + cskip, c)
        self.res = ResBlock(c)
        self.pos = PosMLP(c)
        self.blocks = nn.ModuleList([Block(c, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(c, eps=1e-5)


class Decoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, dd = cfg["dims"], cfg["dec_dims"]
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dd[0]))
        self.add_module("0", Stage(dd[0], cfg["dec_depths"][0], cfg["heads"], [0.0] * cfg["dec_depths"][0],
                                   norm=False))
        self.add_module("1", DecoderUp(dd[0], d[1], dd[1], cfg["dec_depths"][1], cfg["heads"]))


# ---------------------------------------------------------------------------------------------
# The network

class Model3D(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, h = cfg["dims"], cfg["embed_hidden"]
        assert cfg["dec_dims"][0] == d[2] and cfg["dec_dims"][1] == d[1]
        self.embed0 = PointNetEmbed(h, d[0])
        self.merge1 = Merge(d[0], d[1])
        self.merge2 = Merge(d[1], d[2])
        total = sum(cfg["depths"])
        rates = [cfg["drop_path"] * i / (total - 1) if total > 1 else 0.0 for i in range(total)]
        stages, at = [], 0
        for s in range(3):
            stages.append(Stage(d[s], cfg["depths"][s], cfg["heads"], rates[at:at + cfg["depths"][s]]))
            at += cfg["depths"][s]
        self.encoder = nn.ModuleList(stages)
        self.decoder = Decoder(cfg)
        k1, V, C = cfg["k"][1], cfg["views"], cfg["feat_dim"]
        self.rec_head_3d = nn.Linear(cfg["dec_dims"][1], 3 * k1)
        self.rec_head_2d = nn.Linear(cfg["dec_dims"][1], k1 * V * C)
        self.reset_parameters()

    def reset_parameters(self):
        """The spec's init: Xavier-uniform linear weights, zero biases, norms (1,0), trunc-normal
        (std 0.02) mask token."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.LayerNorm, nn.BatchNorm1d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.trunc_normal_(self.decoder.mask_token, std=0.02)

    # -- encoder ------------------------------------------------------------------------------

    def run_encoder_stage(self, s, x_full, xyz, vis):
        """x_full (B,G,C) all tokens of scale s, xyz (B,G,3), vis (B,G) bool numpy. Runs the stage on
        the visible tokens (ascending index, padded to the batch max, padded keys -1e5).
        Returns (full (B,G,C) with the raw block outputs written back, normed (B,G,C) = norm_s of
        the outputs at visible rows, zeros at masked rows)."""
        B, G, C = x_full.shape
        idx = [torch.from_numpy(np.nonzero(vis[b])[0]) for b in range(B)]
        nmax = max(len(i) for i in idx)
        xs, cs = [], []
        key_add = x_full.new_zeros(B, nmax)
        for b in range(B):
            n = len(idx[b])
            xs.append(torch.cat([x_full[b, idx[b]], x_full.new_zeros(nmax - n, C)]))
            cs.append(torch.cat([xyz[b, idx[b]], xyz.new_zeros(nmax - n, 3)]))
            key_add[b, n:] = -1e5
        stage = self.encoder[s]
        out = stage(torch.stack(xs), torch.stack(cs), key_add)
        normed = stage.norm(out)
        full = torch.stack([x_full[b].index_copy(0, idx[b], out[b, :len(idx[b])]) for b in range(B)])
        normed_full = torch.stack([x_full.new_zeros(G, C).index_copy(0, idx[b], normed[b, :len(idx[b])])
                                   for b in range(B)])
        return full, normed_full

    def encode(self, tok, vis, xyz, acts):
        """Tokens, merges and the three encoder stages. xyz[s] (B,G_s,3) tensors. Fills acts."""
        B = vis[0].shape[0]
        k0 = self.cfg["k"][0]
        pts_nb = xyz["points_nb"]                                            # (B,G0,k0,3)
        t0 = self.embed0(pts_nb.reshape(-1, k0, 3)).reshape(B, -1, self.cfg["dims"][0])
        acts["tokens0"] = t0
        full, normed = self.run_encoder_stage(0, t0, xyz[0], vis[0])
        acts["enc0_full"], acts["enc0_out"] = full, normed
        for s, merge in ((1, self.merge1), (2, self.merge2)):
            knn_t = torch.from_numpy(tok["knn%d" % s])                       # (B,G_s,k_s)
            nb = torch.stack([full[b, knn_t[b]] for b in range(B)])          # (B,G_s,k_s,C_in)
            ts = merge(nb.reshape(-1, nb.shape[2], nb.shape[3])).reshape(B, nb.shape[1], -1)
            acts["tokens%d" % s] = ts
            full, normed = self.run_encoder_stage(s, ts, xyz[s], vis[s])
            acts["enc%d_full" % s], acts["enc%d_out" % s] = full, normed
        return acts

    def centre_tensors(self, points, tok, dtype):
        xyz = {s: torch.from_numpy(tok["xyz%d" % s]).to(dtype) for s in range(3)}
        nb = gather_rows(points, tok["knn0"])                                # (B,G0,k0,3) float32
        xyz["points_nb"] = torch.from_numpy(nb).to(dtype) - xyz[0][:, :, None, :]
        return xyz

    # -- training forward ---------------------------------------------------------------------

    def forward(self, points, visible, feat_table, tok=None):
        """points (B,P,3) float32 numpy, visible (B,n_vis) scale-2 token indices, feat_table
        (B,G0,V*C) 2D features at the scale-0 centres. Returns (loss, loss_3d, loss_2d, acts)."""
        cfg = self.cfg
        dtype = self.rec_head_3d.weight.dtype
        if tok is None:
            tok = tokenize(points, cfg)
        B = points.shape[0]
        G2 = cfg["groups"][2]
        vis2 = np.zeros((B, G2), bool)
        for b in range(B):
            vis2[b, np.asarray(visible[b], np.int64)] = True
        vis = propagate_mask(tok, vis2)
        xyz = self.centre_tensors(points, tok, dtype)
        acts = {}
        self.encode(tok, vis, xyz, acts)

        # decoder stage 0: [normed visible (ascending), mask tokens (ascending)]
        dec = self.decoder
        st0 = getattr(dec, "0")
        xs, cs, inv = [], [], []
        for b in range(B):
            vi, mi = np.nonzero(vis2[b])[0], np.nonzero(~vis2[b])[0]
            order = torch.from_numpy(np.concatenate([vi, mi]))
            xs.append(torch.cat([acts["enc2_out"][b, torch.from_numpy(vi)],
                                 dec.mask_token[0].expand(len(mi), -1)]))
            cs.append(xyz[2][b, order])
            inv.append(torch.argsort(order))
        y = st0(torch.stack(xs), torch.stack(cs))
        dec0 = torch.stack([y[b, inv[b]] for b in range(B)])                 # original token order
        acts["dec0_out"] = dec0

        # decoder stage 1
        st1 = getattr(dec, "1")
        ii = torch.from_numpy(tok["interp"])                                 # (B,G1,3)
        nxyz = torch.stack([xyz[2][b, ii[b]] for b in range(B)])             # (B,G1,3,3)
        d2 = ((nxyz - xyz[1][:, :, None, :]) ** 2).sum(-1)
        w = 1.0 / (d2 + 1e-8)
        w = w / w.sum(-1, keepdim=True)
        nb = torch.stack([dec0[b, ii[b]] for b in range(B)])                 # (B,G1,3,C0)
        interp = (w[..., None] * nb).sum(2)
        acts["dec1_interp"] = interp
        x = torch.cat([interp, acts["enc1_out"]], dim=-1)                   # masked skip rows are 0
        x = F.gelu(st1.interp.bn(st1.interp.conv(x)))
        x = st1.res(x)
        for blk in st1.blocks:
            x = blk(x + st1.pos(xyz[1]))
        x = st1.norm(x)
        acts["dec1_out"] = x

        # heads and losses
        k1, VC = cfg["k"][1], cfg["views"] * cfg["feat_dim"]
        vis1 = vis[1]
        G1 = vis1.shape[1]
        knn1 = torch.from_numpy(tok["knn1"])
        gt3d = torch.stack([xyz[0][b, knn1[b]] for b in range(B)]) - xyz[1][:, :, None, :]  # (B,G1,k1,3)
        ft = torch.from_numpy(feat_table).to(dtype)
        tgt2d = torch.stack([ft[b, knn1[b]] for b in range(B)])             # (B,G1,k1,VC)
        m_rows = torch.from_numpy(~vis1)
        v_rows = torch.from_numpy(vis1)
        rec3d = self.rec_head_3d(x[m_rows]).reshape(-1, k1, 3)
        rec2d = self.rec_head_2d(x[v_rows]).reshape(-1, k1, VC)
        loss_3d = chamfer_l2(rec3d, gt3d[m_rows]).mean() if rec3d.shape[0] else x.new_zeros(())
        loss_2d = ((rec2d - tgt2d[v_rows]) ** 2).mean()
        z3 = x.new_zeros(B, G1, k1, 3)
        z3[m_rows] = rec3d
        z2 = x.new_zeros(B, G1, k1, VC)
        z2[v_rows] = rec2d
        acts["rec3d"], acts["rec2d"] = z3, z2
        acts["target3d"] = gt3d
        acts["target2d"] = tgt2d * v_rows[:, :, None, None].to(dtype)
        acts["_vis"] = vis
        acts["_tok"] = tok
        return loss_3d + loss_2d, loss_3d, loss_2d, acts

    @torch.no_grad()
    def encode_global(self, points):
        """The official SVM path (eval=True): eval BN, every scale-2 token visible, scales 1 and 0
        visible through the kNN propagation; max over scale-2 tokens of norm_2(stage-2 output)."""
        was = self.training
        self.eval()
        dtype = self.rec_head_3d.weight.dtype
        tok = tokenize(points, self.cfg)
        vis = propagate_mask(tok, np.ones(tok["centres2"].shape, bool))
        acts = self.encode(tok, vis, self.centre_tensors(points, tok, dtype), {})
        self.train(was)
        return acts["enc2_out"].max(dim=1)[0]


def chamfer_l2(p, g):
    """p (L,n,3), g (L,m,3) -> (L,) mean_i min_j |p_i-g_j|^2 + mean_j min_i |p_i-g_j|^2."""
    d = ((p[:, :, None, :] - g[:, None, :, :]) ** 2).sum(-1)
    return d.min(dim=2)[0].mean(1) + d.min(dim=1)[0].mean(1)


def param_groups(model, wd=0.05):
    """AdamW groups: decay = tensors of rank >= 2 except decoder.mask_token."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if p.dim() >= 2 and name != "decoder.mask_token" else no_decay).append(p)
    return [{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0.0}]


# ---------------------------------------------------------------------------------------------
# Reference file

def write_reference(path, cfg_name, B, seed, double):
    import h5py
    cfg = config(cfg_name)
    cfg["drop_path"] = 0.0  # stochastic depth draws torch's RNG, which the C side cannot reproduce
    model, dtype = make_model(Model3D, cfg, seed, double)
    inp = make_inputs(cfg, B, seed)
    tok = tokenize(inp["points"], cfg)
    inp["visible"] = draw_masks(cfg, inp, tok)
    feat = point_features(inp["grids"], inp["pixels"], tok["orig0"], cfg["image"], use_interpolate=True)

    def grad32(p):  # a parameter outside the loss path (encoder.0.norm) has gradient 0
        return f32(p.grad) if p.grad is not None else np.zeros(tuple(p.shape), np.float32)
    with h5py.File(path, "w") as f:
        for k in CONFIG_FIELDS:
            v = cfg[k]
            f.attrs[k] = np.asarray(v, np.int32) if isinstance(v, list) else (
                np.float64(v) if isinstance(v, float) else np.int32(v))
        f.attrs["batch"] = np.int32(B)
        f.attrs["seed"] = np.int64(seed)
        f.attrs["n_visible"] = np.int32(n_visible(cfg))
        f.attrs["computed_in"] = "float64" if double else "float32"
        for n, p in model.named_parameters():
            f["params/" + n] = f32(p)
        for n, b in bn_buffers(model):
            f["buffers/" + n] = f32(b)
        f["inputs/points"] = inp["points"]
        f["inputs/point_saliency"] = inp["point_saliency"]
        f["inputs/grids"] = inp["grids"]
        f["inputs/pixels"] = inp["pixels"]
        f["inputs/mask_keys"] = inp["mask_keys"]
        f["inputs/visible"] = inp["visible"]

        global0 = model.encode_global(inp["points"])
        f["expected/global"] = f32(global0)
        # the SVM path's visibility (tests check that it leaves some finer token out)
        tok_eval = tokenize(inp["points"], cfg)
        for s, v in enumerate(propagate_mask(tok_eval, np.ones(tok_eval["centres2"].shape, bool))):
            f["expected/eval_vis%d" % s] = np.asarray(v, np.int32)

        opt = torch.optim.AdamW(param_groups(model), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        step_losses = np.zeros((5, 3))
        for step in range(1, 6):
            opt.zero_grad(set_to_none=False)
            loss, l3, l2, acts = model(inp["points"], inp["visible"], feat, tok)
            loss.backward()
            step_losses[step - 1] = [loss.item(), l3.item(), l2.item()]
            if step == 1:
                f["expected/loss"] = np.array([loss.item()], np.float64)
                f["expected/loss_3d"] = np.array([l3.item()], np.float64)
                f["expected/loss_2d"] = np.array([l2.item()], np.float64)
                for n, p in model.named_parameters():
                    f["expected/grads/" + n] = grad32(p)
                for n, a in acts.items():
                    if not n.startswith("_"):
                        f["expected/activations/" + n] = f32(a)
                for n, b in bn_buffers(model):
                    f["expected/buffers/" + n] = f32(b)
                t = acts["_tok"]
                ind = {"centres0": t["centres0"], "centres1": t["centres1"], "centres2": t["centres2"],
                       "knn0": t["knn0"], "knn1": t["knn1"], "knn2": t["knn2"], "interp": t["interp"],
                       "orig0": t["orig0"], "orig1": t["orig1"], "orig2": t["orig2"]}
                for s in range(3):
                    ind["vis%d" % s] = acts["_vis"][s]
                for n, a in ind.items():
                    f["expected/indices/" + n] = np.asarray(a, np.int32)
            opt.step()
            # the full state after each step, so that a test can check every step on its own
            for n, p in model.named_parameters():
                f["expected/adamw/step%d/%s" % (step, n)] = f32(p)
                f["expected/adamw/grads%d/%s" % (step, n)] = grad32(p)
                st = opt.state[p]  # empty for a parameter outside the loss path (grad None): moments 0
                f["expected/adamw/m%d/%s" % (step, n)] = f32(st.get("exp_avg", torch.zeros_like(p)))
                f["expected/adamw/v%d/%s" % (step, n)] = f32(st.get("exp_avg_sq", torch.zeros_like(p)))
            for n, b in bn_buffers(model):
                f["expected/adamw/buffers%d/%s" % (step, n)] = f32(b)
        f["expected/adamw/losses"] = step_losses
        f["expected/global_step5"] = f32(model.encode_global(inp["points"]))
    return loss


# ---------------------------------------------------------------------------------------------
# Bench: one training step (tokenize, forward, backward, AdamW) at the spec configuration

def bench(B, steps, threads, points, warmup=1):
    torch.set_num_threads(threads)
    cfg = config("spec")
    cfg["points"] = points
    torch.manual_seed(0)
    model = Model3D(cfg)
    model.train()
    inp = make_inputs(cfg, B, 0)
    opt = torch.optim.AdamW(param_groups(model), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    n_params = sum(p.numel() for p in model.parameters())
    times = []
    for it in range(steps + warmup):
        t0, c0 = time.perf_counter(), time.process_time()
        tok = tokenize(inp["points"], cfg)
        visible = draw_masks(cfg, inp, tok)
        feat = point_features(inp["grids"], inp["pixels"], tok["orig0"], cfg["image"], use_interpolate=False)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        loss, _, _, _ = model(inp["points"], visible, feat, tok)
        loss.backward()
        opt.step()
        t2, c2 = time.perf_counter(), time.process_time()
        if it >= warmup:
            times.append((t2 - t0, t1 - t0, c2 - c0))
        print("step %d: %.3f s (tokenize+mask+targets %.3f s) loss %.4f" % (it, t2 - t0, t1 - t0, loss.item()),
              flush=True)
    step_s = sum(t[0] for t in times) / len(times)
    # CPU seconds (all threads) tell more than wall time when the machine is shared
    print('{"bench": "model3d_ref", "batch": %d, "points": %d, "threads": %d, "params": %d, '
          '"steps": %d, "seconds_per_step": %.4f, "prep_seconds_per_step": %.4f, "cpu_seconds_per_step": %.4f}'
          % (B, points, threads, n_params, len(times), step_s, sum(t[1] for t in times) / len(times),
             sum(t[2] for t in times) / len(times)))
    print("ref_seconds_per_step %.4f" % step_s)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?")
    ap.add_argument("--config", default="tiny", choices=["tiny", "spec"])
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--double", action="store_true", help="compute in float64")
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--steps", type=int, default=1, help="timed steps (bench)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps first (bench)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--points", type=int, default=2048)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.bench:
        bench(a.batch or 32, a.steps, a.threads, a.points, a.warmup)
        return 0
    if not a.out:
        ap.error("OUT.h5 is required unless --bench")
    write_reference(a.out, a.config, a.batch or 2, a.seed, a.double)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
