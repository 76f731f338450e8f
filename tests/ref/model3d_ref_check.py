"""model3d_ref_check.py -- self-checks of the PyTorch reference (tests/ref/model3d_ref.py), one per call:

  model3d_ref_check.py CHECK [ARGS]      exits 0 if CHECK holds, 1 (with a reason on stderr) if not
  model3d_ref_check.py --all CHECK[:ARG[:ARG]]...   runs the CHECKs in one process (one torch import)
                                          and prints "PASS: ref_CHECK" / "FAIL: ref_CHECK: why" lines

Run by tests/e2e/test_model3d_ref_py.sh. Every check uses the tiny configuration.
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model3d_ref as R  # noqa: E402

torch.set_num_threads(1)  # tiny tensors: a second thread only adds contention on the shared machine


def setup(B=2, seed=0, dtype=torch.float32):
    cfg = R.config("tiny")
    torch.manual_seed(seed)
    model = R.Model3D(cfg)
    R.perturb_for_test(model, torch.Generator().manual_seed(seed + 1))
    model.to(dtype).train()
    inp = R.make_inputs(cfg, B, seed)
    tok = R.tokenize(inp["points"], cfg)
    inp["visible"] = R.draw_masks(cfg, inp, tok)
    return cfg, model, inp


def run(model, cfg, inp, backward=True):
    """One train forward (+ backward) -> (losses (3,) float64, {name: grad}, acts)."""
    tok = R.tokenize(inp["points"], cfg)
    feat = R.point_features(inp["grids"], inp["pixels"], tok["orig0"], cfg["image"])
    model.zero_grad(set_to_none=True)
    loss, l3, l2, acts = model(inp["points"], inp["visible"], feat, tok)
    grads = {}
    if backward:
        loss.backward()
        grads = {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
                 for n, p in model.named_parameters()}
    return np.array([loss.item(), l3.item(), l2.item()]), grads, acts


class CheckFailed(Exception):
    pass


def fail(msg):
    raise CheckFailed(msg)


def close(a, b, rtol, what):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    err = np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)
    if not np.isfinite(err) or err > rtol:
        fail("%s: relative max difference %.3g > %.1g" % (what, err, rtol))


def grads_close(ga, gb, rtol, what, gtol=1e-5):
    """Per tensor: max|a-b| <= rtol * max|b| + gtol * (largest |gradient| anywhere). The gtol term
    absorbs the rounding noise of tensors whose exact gradient is 0 (docs/model3d.md)."""
    top = max(float(g.abs().max()) for g in gb.values())
    for n in gb:
        a, b = ga[n].detach().double().numpy(), gb[n].detach().double().numpy()
        diff, lim = np.abs(a - b).max(), rtol * np.abs(b).max() + gtol * top
        if not diff <= lim:
            fail("%s: grad %s: max difference %.3g > %.3g" % (what, n, diff, lim))


def check_gradcheck():
    """torch.autograd.gradcheck (float64, forced mask) of both losses w.r.t. a set of small tensors
    that touch every part of the network."""
    cfg, model, inp = setup(dtype=torch.float64)
    # Small tensors only (gradcheck costs two model evaluations per element; ~80 elements here keeps
    # it well under a minute on 2 busy cores). check_directional covers every parameter.
    names = ["embed0.conv1.weight", "merge1.bn1.weight", "encoder.0.pos.fc1.bias",
             "decoder.1.res.bn1.bias", "rec_head_3d.bias"]
    params = dict(model.named_parameters())
    tok = R.tokenize(inp["points"], cfg)
    feat = R.point_features(inp["grids"], inp["pixels"], tok["orig0"], cfg["image"])
    from torch.nn.utils.stateless import functional_call

    def f(*ts):
        out = functional_call(model, dict(zip(names, ts)), (inp["points"], inp["visible"], feat, tok))
        return out[1], out[2]

    ts = tuple(params[n].detach().clone().requires_grad_(True) for n in names)
    if not torch.autograd.gradcheck(f, ts, eps=1e-6, atol=1e-6, rtol=1e-4, raise_exception=False):
        fail("gradcheck failed")


def check_directional():
    """Central differences along random directions over ALL parameters (float64) == <grad, u>."""
    cfg, model, inp = setup(dtype=torch.float64)
    _, grads, _ = run(model, cfg, inp)
    params = dict(model.named_parameters())
    gen = torch.Generator().manual_seed(7)
    eps = 1e-6
    for trial in range(3):
        u = {n: torch.randn(p.shape, generator=gen, dtype=p.dtype) for n, p in params.items()}
        dot = sum((grads[n] * u[n]).sum().item() for n in params)
        vals = []
        for sgn in (1, -1):
            with torch.no_grad():
                for n, p in params.items():
                    p.add_(sgn * eps * u[n])
            vals.append(run(model, cfg, inp, backward=False)[0][0])
            with torch.no_grad():
                for n, p in params.items():
                    p.sub_(sgn * eps * u[n])
        fd = (vals[0] - vals[1]) / (2 * eps)
        if abs(fd - dot) > 1e-5 * max(1.0, abs(dot)):
            fail("direction %d: finite difference %.10g vs analytic %.10g" % (trial, fd, dot))


def check_point_permutation():
    """Permuting points 1..P-1 (point 0 stays first: FPS starts there) with their saliency and pixels
    changes nothing: same centres (as points), losses and gradients."""
    cfg, model, inp = setup()
    la, ga, aa = run(model, cfg, inp)
    rng = np.random.default_rng(3)
    perm = np.concatenate([[0], 1 + rng.permutation(cfg["points"] - 1)])
    q = dict(inp)
    q["points"] = inp["points"][:, perm]
    q["point_saliency"] = inp["point_saliency"][:, perm]
    q["pixels"] = inp["pixels"][:, :, perm]
    lb, gb, ab = run(model, cfg, q)
    close(aa["_tok"]["xyz0"], ab["_tok"]["xyz0"], 0, "scale-0 centres")
    if not np.array_equal(perm[ab["_tok"]["orig2"]], aa["_tok"]["orig2"]):
        fail("scale-2 centres differ")
    close(lb, la, 1e-6, "losses")
    grads_close(gb, ga, 1e-5, "point permutation")


def check_batch_order():
    """Swapping the samples of the batch (with their masks) gives the same losses and gradients
    (float64, so that only the summation order differs)."""
    cfg, model, inp = setup(dtype=torch.float64)
    la, ga, _ = run(model, cfg, inp)
    q = {k: v[::-1].copy() for k, v in inp.items()}
    lb, gb, _ = run(model, cfg, q)
    close(lb, la, 1e-12, "losses")
    grads_close(gb, ga, 1e-10, "batch order", gtol=1e-12)


def check_visible_order():
    """The forced visible list is a set: its order does not matter."""
    cfg, model, inp = setup()
    la, ga, _ = run(model, cfg, inp)
    q = dict(inp)
    q["visible"] = inp["visible"][:, ::-1].copy()
    lb, gb, _ = run(model, cfg, q)
    close(lb, la, 0, "losses")
    grads_close(gb, ga, 0, "visible order")


def check_finite():
    """Losses and gradients finite and positive at the tiny configuration (B 2 and B 3, two seeds)."""
    for B, seed in ((2, 0), (3, 5)):
        cfg, model, inp = setup(B, seed)
        losses, grads, _ = run(model, cfg, inp)
        if not (np.all(np.isfinite(losses)) and np.all(losses > 0)):
            fail("losses %s" % losses)
        for n, g in grads.items():
            if not torch.isfinite(g).all():
                fail("gradient %s not finite" % n)


def check_masks():
    """Mask consistency: n_vis distinct scale-2 tokens; a visible scale-(s+1) token has only visible
    scale-s children; masked scale-s tokens are exactly those no visible parent references."""
    for seed in range(4):
        cfg, model, inp = setup(3, seed)
        _, _, acts = run(model, cfg, inp, backward=False)
        tok, vis = acts["_tok"], acts["_vis"]
        n_vis = R.n_visible(cfg)
        for b in range(3):
            if len(set(inp["visible"][b].tolist())) != n_vis or vis[2][b].sum() != n_vis:
                fail("scale-2 visible count")
            for s in (1, 2):
                children = tok["knn%d" % s][b][vis[s][b]].ravel()
                if not vis[s - 1][b][children].all():
                    fail("seed %d sample %d: a visible scale-%d token has a masked child" % (seed, b, s))
                if set(np.nonzero(vis[s - 1][b])[0].tolist()) != set(children.tolist()):
                    fail("scale-%d visible set is not the union of visible children" % (s - 1))
            if np.abs(acts["enc1_out"][b][~torch.from_numpy(vis[1][b])].detach().numpy()).max(initial=0) != 0:
                fail("masked skip rows are not zero")


def check_mask_draw():
    """The saliency-guided draw: a dominant token comes first almost always; uniform saliency gives
    each token first about equally often; a permutation has no repeats."""
    first = [R.draw_visible([6.0, 0, 0, 0], key, 4) for key in range(300)]
    if any(sorted(p) != [0, 1, 2, 3] for p in first):
        fail("draw repeats a token")
    share = np.mean([p[0] == 0 for p in first])
    if share < 0.9:
        fail("dominant token first in only %.2f of draws" % share)
    counts = np.bincount([R.draw_visible(np.zeros(8), key, 1)[0] for key in range(800)], minlength=8)
    if counts.min() < 60:
        fail("uniform draw counts %s" % counts)


def check_rng_matches_c(values_file):
    """The Python xoshiro256** equals src/rng.c: values_file holds lines 'seed stream u64 u64 u64 uniform'."""
    for line in open(values_file):
        seed, stream, a, b, c, u = line.split()
        r = R.Rng(int(seed), int(stream))
        got = [r.u64(), r.u64(), r.u64()]
        if got != [int(a), int(b), int(c)]:
            fail("rng(%s,%s): python %s vs C %s" % (seed, stream, got, [a, b, c]))
        if abs(r.uniform() - float(u)) > 1e-16:
            fail("rng_uniform differs")


def check_chamfer():
    """Chamfer L2 of identical sets (in any order) is 0, and a hand-computed case."""
    g = torch.randn(5, 4, 3, dtype=torch.float64)
    if R.chamfer_l2(g, g).abs().max() != 0 or R.chamfer_l2(g[:, [2, 0, 3, 1]], g).abs().max() != 0:
        fail("chamfer of identical sets is not 0")
    p = torch.tensor([[[0.0, 0, 0], [1, 0, 0]]], dtype=torch.float64)
    q = torch.tensor([[[0.0, 0, 0], [0, 2, 0], [0, 0, 1]]], dtype=torch.float64)
    # p->q: 0, min(1, 5, 2) = 1 -> mean 1/2; q->p: 0, min(4, 5) = 4, min(1, 2) = 1 -> mean 5/3
    if abs(R.chamfer_l2(p, q).item() - (1 / 2 + 5 / 3)) > 1e-12:
        fail("chamfer hand case %.6f" % R.chamfer_l2(p, q).item())


def check_bicubic_taps():
    """The 4x4-tap bicubic read equals F.interpolate then index (both used by the reference)."""
    cfg = R.config("tiny")
    inp = R.make_inputs(cfg, 2, 1)
    orig = np.tile(np.arange(cfg["points"]), (2, 1))
    a = R.point_features(inp["grids"], inp["pixels"], orig, cfg["image"], use_interpolate=True)
    b = R.point_features(inp["grids"], inp["pixels"], orig, cfg["image"], use_interpolate=False)
    close(b, a, 1e-5, "tap bicubic vs F.interpolate")


def check_padding():
    """With BN in eval mode, sample 0 of a padded batch gives the same activations as alone."""
    cfg, model, inp = setup(3, 2)
    model.eval()
    _, _, aa = run(model, cfg, inp, backward=False)
    one = {k: v[:1].copy() for k, v in inp.items()}
    _, _, ab = run(model, cfg, one, backward=False)
    if aa["_vis"][0].sum(1).min() == aa["_vis"][0].sum(1).max():
        fail("inputs give no padding (equal visible counts)")
    for n in ("enc0_out", "enc1_out", "enc2_out", "dec0_out", "dec1_out", "rec3d", "rec2d"):
        close(ab[n][0].detach().numpy(), aa[n][0].detach().numpy(), 1e-5, n)


def check_file(path):
    """The reference file has every dataset of docs/model3d.md with the right shapes."""
    import h5py
    cfg = R.config("tiny")
    with h5py.File(path, "r") as f:
        B = int(f.attrs["batch"])
        torch.manual_seed(0)
        model = R.Model3D(cfg)
        G, V, C, k1 = cfg["groups"], cfg["views"], cfg["feat_dim"], cfg["k"][1]
        want = {"inputs/points": (B, cfg["points"], 3), "inputs/point_saliency": (B, cfg["points"]),
                "inputs/grids": (B, V, cfg["grid"], cfg["grid"], C), "inputs/pixels": (B, V, cfg["points"], 2),
                "inputs/visible": (B, R.n_visible(cfg)), "expected/loss": (1,), "expected/loss_3d": (1,),
                "expected/loss_2d": (1,), "expected/global": (B, cfg["dims"][2]),
                "expected/activations/tokens0": (B, G[0], cfg["dims"][0]),
                "expected/activations/rec2d": (B, G[1], k1, V * C)}
        for n, p in model.named_parameters():
            for grp in ("params/", "expected/grads/", "expected/adamw/step1/", "expected/adamw/step5/",
                        "expected/adamw/grads3/", "expected/adamw/m1/", "expected/adamw/v5/"):
                want[grp + n] = tuple(p.shape)
        for n, b in R.bn_buffers(model):
            for grp in ("buffers/", "expected/buffers/", "expected/adamw/buffers1/", "expected/adamw/buffers5/"):
                want[grp + n] = tuple(b.shape)
        for n, shape in want.items():
            if n not in f:
                fail("missing " + n)
            if f[n].shape != shape:
                fail("%s has shape %s, want %s" % (n, f[n].shape, shape))
        if f["inputs/pixels"].dtype != np.int16 or f["inputs/visible"].dtype != np.int32:
            fail("pixels must be int16 and visible int32")
        if list(f.attrs["groups"]) != G or float(f.attrs["mask_ratio"]) != cfg["mask_ratio"]:
            fail("config attributes")
        if not np.isclose(f["expected/loss"][0], f["expected/loss_3d"][0] + f["expected/loss_2d"][0]):
            fail("loss != loss_3d + loss_2d")
        if f["expected/adamw/losses"][0, 0] != f["expected/loss"][0]:
            fail("AdamW step-1 loss != /expected/loss")
        for grp in ("expected/adamw/grads1/", "expected/adamw/buffers1/"):
            ref = "expected/grads/" if "grads" in grp else "expected/buffers/"
            for n in f[ref]:
                if not np.array_equal(f[grp + n][()], f[ref + n][()]):
                    fail("%s%s differs from %s%s" % (grp, n, ref, n))


def check_double_agrees(path32, path64):
    """The float32 and float64 runs agree to float32 accuracy (losses, gradients, losses of the 5
    AdamW steps, global feature with the initial parameters)."""
    import h5py
    with h5py.File(path32, "r") as a, h5py.File(path64, "r") as b:
        for n in ("loss", "loss_3d", "loss_2d", "global"):
            close(a["expected/" + n][()], b["expected/" + n][()], 1e-5, n)
        # later steps feel the sign of Adam's first update on elements whose gradient is rounding noise
        close(a["expected/adamw/losses"][()], b["expected/adamw/losses"][()], 1e-3, "AdamW step losses")
        g = lambda f: {n: torch.from_numpy(f["expected/grads/" + n][()]) for n in f["expected/grads"]}  # noqa: E731
        grads_close(g(a), g(b), 3e-4, "float32 vs float64")


def main(argv):
    if argv[0] == "--all":
        bad = 0
        for spec in argv[1:]:
            name, *args = spec.split(":")
            try:
                globals()["check_" + name](*args)
                print("PASS: ref_%s" % name, flush=True)
            except Exception as e:  # a check that crashes is a failed check, reported like one
                print("FAIL: ref_%s: %s" % (name, str(e).replace("\n", " ")[:400]), flush=True)
                bad += 1
        return 1 if bad else 0
    try:
        globals()["check_" + argv[0]](*argv[1:])
    except CheckFailed as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
