"""longrun_ref.py -- long-run parity of `i2pmae pretrain` with the independent PyTorch reference.

Trains the reference network (model3d_ref.py) for as many steps as a C run directory holds, from the
same initial weights, data order, augmentation, masks and 2D targets, with the same data-parallel
step (micro-batches, gradient average, BatchNorm running statistics averaged over the ranks), and
compares the loss curves step by step and the parameters at every stored checkpoint.

  longrun_ref.py --run RUNDIR --data DATA.h5 [--features FEAT.h5] --ranks R [--steps N]
                 [--export CKPT.h5] [--json OUT.json]

Everything the C side draws is written again here from the definitions, not read from the C run:
  * initial weights: per tensor t (tensor-table order) the stream rng_seed(seed, t); rank >= 2
    tensors Xavier-uniform rng_range(-b, b), b = sqrt(6 / (shape0 + shape1)); decoder.mask_token
    0.02 * rng_normal clipped at +-2; other ".weight" 1, the rest 0 (src/model3d.c init_params);
    BatchNorm running mean 0, var 1;
  * data order: Fisher-Yates with rng_below on stream rng_mix("order", epoch) (src/data_order.c);
  * augmentation: per (epoch, sample) stream rng_mix("augment", rng_mix(epoch, sample)): three scales
    U(2/3, 3/2), three shifts U(-0.2, 0.2), applied in double and rounded to float32 (augment.c);
  * 2D targets: bicubic reads (a=-0.75, the tap form of model3d_ref_data.py) of the stored grids;
  * masks: key rng_mix(rng_mix(seed, step), sample), the saliency-guided draw of model3d_ref_data.py
    (uniform without a saliency: --masking random);
  * learning rate: timm's cosine per epoch (cosine_ref.py transcription); AdamW as torch.optim.AdamW.
From the C run only the configuration JSON and the tensor table (names, shapes) of its checkpoints
are read, and for the comparison its loss.csv and parameters.
Prints one line per checked step and a JSON summary; --export writes a copy of the C run's last
checkpoint with the reference's parameters and buffers (for `i2pmae svm`).
"""
import argparse
import json
import math
import os
import shutil
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cosine_ref import transcription as cosine_lr  # noqa: E402
from model3d_ref import Model3D, bn_buffers, param_groups  # noqa: E402
from model3d_ref_data import M64, Rng, draw_visible, point_features, rng_mix, tokenize  # noqa: E402

ORDER_STREAM = 0x6F72646572
AUGMENT_STREAM = 0x6175676D656E74


def rng_below(r, n):
    limit = M64 - M64 % n
    while True:
        v = r.u64()
        if v < limit:
            return v % n


def rng_normal(r):
    u1, u2 = r.uniform(), r.uniform()
    u1 = max(u1, 1e-300)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def data_order(seed, epoch, n):
    r = Rng(seed, rng_mix(ORDER_STREAM, epoch))
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng_below(r, i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm, np.int64)


def augment(pts, seed, epoch, sample):
    r = Rng(seed, rng_mix(AUGMENT_STREAM, rng_mix(epoch, sample)))
    s = [2.0 / 3.0 + (1.5 - 2.0 / 3.0) * r.uniform() for _ in range(3)]
    t = [-0.2 + 0.4 * r.uniform() for _ in range(3)]
    return (pts.astype(np.float64) * np.array(s) + np.array(t)).astype(np.float32)


def tensor_table(ckpt):
    """[(name, offset, count, shape)] from a C checkpoint's tensor table attribute."""
    with h5py.File(ckpt, "r") as f:
        text = f.attrs["provenance"]  # the tensor table ("name offset count (shape) decay=d" lines)
    text = text.decode() if isinstance(text, bytes) else text
    out = []
    for line in text.strip().splitlines():
        name, off, cnt, shape = line.split()[:4]
        out.append((name, int(off), int(cnt), tuple(int(x) for x in shape.strip("()").split(",") if x)))
    return out


def init_like_c(model, table, seed):
    params = dict(model.named_parameters())
    with torch.no_grad():
        for t, (name, _, count, shape) in enumerate(table):
            r = Rng(seed, t)
            if name == "decoder.mask_token":
                v = [min(2.0, max(-2.0, 0.02 * rng_normal(r))) for _ in range(count)]
            elif len(shape) >= 2:
                b = math.sqrt(6.0 / (shape[0] + shape[1]))
                v = [-b + 2 * b * r.uniform() for _ in range(count)]
            else:
                v = [1.0 if name.endswith(".weight") else 0.0] * count
            params[name].copy_(torch.tensor(v, dtype=torch.float64).reshape(params[name].shape))
        for n, b in bn_buffers(model):
            b.fill_(1.0 if n.endswith("running_var") else 0.0)


def flat_params(model, table):
    """The parameters in the C layout (offsets of the tensor table)."""
    p = dict(model.named_parameters())
    out = np.zeros(max(off + cnt for _, off, cnt, _ in table), np.float32)
    for name, off, cnt, _ in table:
        out[off:off + cnt] = p[name].detach().numpy().ravel()
    return out


def flat_buffers(model):
    return np.concatenate([b.detach().numpy().ravel() for _, b in bn_buffers(model)])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--features")
    ap.add_argument("--ranks", type=int, required=True, help="ranks of the C run (BatchNorm buffer average)")
    ap.add_argument("--steps", type=int, default=0, help="0: as many as the C run's loss.csv")
    ap.add_argument("--export")
    ap.add_argument("--json")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    ckpts = sorted(f for f in os.listdir(a.run) if f.startswith("ckpt-") and f.endswith(".h5"))
    last = os.path.join(a.run, ckpts[-1])
    with h5py.File(last, "r") as f:
        conf = json.loads(f.attrs["config"])
    cfg = dict(conf["model"])
    assert cfg.get("visible", 0) == 0, "--visible: not in the reference's n_visible"
    tr, ob = conf["train"], conf["objective"]
    cfg["drop_path"] = float(cfg["drop_path"])
    assert cfg["drop_path"] == 0.0, "stochastic depth draws cannot be repeated: run the C side with --drop-path 0"
    seed, batch, micro = int(tr["seed"]), int(tr["batch"]), int(tr["micro_batch"])
    w3, w2 = ob["loss_3d_weight"], ob["loss_2d_weight"]
    table = tensor_table(last)
    c_loss = np.loadtxt(os.path.join(a.run, "loss.csv"), delimiter=",", skiprows=1, ndmin=2)
    steps = a.steps or int(c_loss[-1, 0])

    torch.manual_seed(0)
    has2d = cfg["feat_dim"] > 0
    if not has2d:  # the reference always builds a 2D head; give it a tiny one and weight 0
        cfg.update(views=1, feat_dim=1, grid=1, image=1)
        w2 = 0.0
    model = Model3D(cfg)
    init_like_c(model, table, seed)
    model.train()
    opt = torch.optim.AdamW(param_groups(model, tr["weight_decay"]), lr=tr["lr"], betas=(0.9, 0.999), eps=1e-8)

    with h5py.File(a.data, "r") as f:
        raw = f["points"][:, :cfg["points"]].astype(np.float32)
    n, Pm = raw.shape[0], cfg["points"]
    guided = ob["masking"] == "2d-guided"
    if guided or has2d:
        with h5py.File(a.features, "r") as f:
            sal = f["point_saliency"][:, :Pm].astype(np.float32) if guided else None
            grids = f["patch"][()].astype(np.float32) if has2d else None
            pixels = f["pixel"][:, :, :Pm].astype(np.int16) if has2d else None
    n_vis = cfg["groups"][2] - int(cfg["mask_ratio"] * cfg["groups"][2])
    spe = n // batch
    mps = batch // micro
    mpr = mps // a.ranks
    bufs = [b for _, b in bn_buffers(model)]
    ref_rows, perm_epoch, perm = [], -1, None
    ckpt_steps = {int(c[5:13]): os.path.join(a.run, c) for c in ckpts}
    param_drift = {}
    for step in range(steps):
        epoch, pos = step // spe, (step % spe) * batch
        if epoch != perm_epoch:
            perm, perm_epoch = data_order(seed, epoch, n), epoch
        lr = cosine_lr(tr["lr"], tr["sched_epochs"], tr["warmup_epochs"], tr["min_lr"], tr["warmup_lr"], epoch)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.zero_grad(set_to_none=False)
        start = [b.detach().clone() for b in bufs]
        ends, acc = [], np.zeros(3)
        for k in range(mps):
            if k % mpr == 0:  # each rank starts from the step's buffers
                with torch.no_grad():
                    for b, s0 in zip(bufs, start):
                        b.copy_(s0)
            ids = perm[pos + k * micro: pos + (k + 1) * micro]
            pts = np.stack([augment(raw[i], seed, epoch, int(i)) for i in ids])
            tok = tokenize(pts, cfg)
            vis = np.zeros((micro, n_vis), np.int32)
            for j, i in enumerate(ids):
                key = rng_mix(rng_mix(seed, step), int(i))
                s2 = sal[i][tok["orig2"][j]] if guided else np.zeros(cfg["groups"][2], np.float32)
                vis[j] = draw_visible(s2, key, n_vis)
            if has2d:
                feat = point_features(grids[ids], pixels[ids], tok["orig0"], cfg["image"], use_interpolate=False)
            else:
                feat = np.zeros((micro, cfg["groups"][0], 1), np.float32)
            _, l3, l2, _ = model(pts, vis, feat, tok)
            loss = w3 * l3 + w2 * l2
            (loss / mps).backward()
            acc += np.array([loss.item(), l3.item(), l2.item()]) / mps
            if (k + 1) % mpr == 0:
                ends.append([b.detach().clone() for b in bufs])
        with torch.no_grad():
            for i, b in enumerate(bufs):
                b.copy_(sum(e[i] for e in ends) / len(ends))
        opt.step()
        ref_rows.append([step + 1, epoch, acc[0], acc[1], acc[2], lr])
        if step + 1 in ckpt_steps:
            with h5py.File(ckpt_steps[step + 1], "r") as f:
                cp, cb = f["params"][()], f["buffers"][()]
            rp, rb = flat_params(model, table), flat_buffers(model)
            param_drift[step + 1] = (float(np.linalg.norm(rp - cp) / np.linalg.norm(cp)),
                                     float(np.linalg.norm(rb - cb) / np.linalg.norm(cb)))
        if (step + 1) % 25 == 0 or step == 0:
            c = c_loss[c_loss[:, 0] == step + 1]
            cl = c[0, 2] if len(c) else float("nan")
            print("step %d epoch %d lr %.3e  ref loss %.5f (3d %.5f, 2d %.5f)  C loss %.5f  rel %.2e%s" % (
                step + 1, epoch, lr, acc[0], acc[1], acc[2], cl, abs(acc[0] - cl) / abs(cl),
                ("  params rel %.2e buffers rel %.2e" % param_drift[step + 1]) if step + 1 in param_drift else ""),
                flush=True)

    ref = np.array(ref_rows)
    c = c_loss[:steps]
    assert np.array_equal(c[:, 0], ref[:, 0]), "the C run's loss.csv must have a row per step (--log-every 1)"
    rel = np.abs(ref[:, 2] - c[:, 2]) / np.abs(c[:, 2])

    def window(x, lo, hi):
        return float(np.mean(x[lo:hi]))
    summary = {
        "steps": steps,
        "lr_max_abs_diff": float(np.max(np.abs(ref[:, 5] - c[:, 5]))),
        "loss_rel_first": float(rel[0]),
        "loss_rel_max_first10": float(np.max(rel[:10])),
        "loss_rel_median": float(np.median(rel)),
        "loss_rel_max": float(np.max(rel)),
        "mean_loss_last50_ref": window(ref[:, 2], -50, None),
        "mean_loss_last50_c": window(c[:, 2], -50, None),
        "mean_loss_first50_c": window(c[:, 2], 0, 50),
        "param_drift": {str(k): v for k, v in sorted(param_drift.items())},
    }
    summary["mean_loss_last50_rel"] = abs(summary["mean_loss_last50_ref"] - summary["mean_loss_last50_c"]) / \
        summary["mean_loss_last50_c"]
    if a.export:
        shutil.copyfile(last, a.export)
        with h5py.File(a.export, "r+") as f:
            f["params"][...] = flat_params(model, table)
            f["buffers"][...] = flat_buffers(model)
    print(json.dumps(summary))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
