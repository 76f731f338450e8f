"""ref_case.py -- what the PyTorch reference scripts of the networks (model3d_ref.py,
classifier_ref.py, partseg_ref.py) share when they write a test case for the C unit tests: the
perturbation that makes every tensor take part, the forced drop-path masks, the HDF5 datasets of a
case's configuration, state and results, and the command line `SCRIPT OUT.h5 [--seed S] [--double]`.
"""
import argparse

import numpy as np
import torch


def perturb_for_test(model, gen):
    """Test files only: rank-1 parameters (biases, norm parameters) N(0,0.1) around their init, BN
    running means N(0,0.1) and running variances U(0.5,1.5), so that every tensor takes part in the
    comparison."""
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen, dtype=b.dtype))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen, dtype=b.dtype))


def make_model(model_class, cfg, seed, double):
    """model_class(cfg) initialised under torch.manual_seed(seed), perturbed (perturb_for_test) from a
    generator seeded seed + 1, in float64 when double (else float32), in training mode.
    Returns (model, dtype)."""
    torch.manual_seed(seed)
    model = model_class(cfg)
    perturb_for_test(model, torch.Generator().manual_seed(seed + 1))
    dtype = torch.float64 if double else torch.float32
    model.to(dtype)
    model.train()
    return model, dtype


def bn_buffers(model):
    return [(n, b) for n, b in model.named_buffers() if n.endswith("running_mean") or n.endswith("running_var")]


def f32(t):
    return t.detach().to(torch.float32).numpy()


def forced_drop_path(rng, cfg, B):
    """(B, n_blocks, 2) float32 residual scales of the attention and MLP branch of every block: each
    dropped with probability 0.3 (more than the rates, so that drops occur at a small B), kept ones
    scaled by 1 / (1 - rate) with the block's rate rising linearly from 0 to cfg["drop_path"]."""
    nb = sum(cfg["depths"])
    rates = [cfg["drop_path"] * i / (nb - 1) for i in range(nb)]
    keep = rng.uniform(0, 1, (B, nb, 2)) >= 0.3
    return (keep / (1.0 - np.asarray(rates))[None, :, None]).astype(np.float32)


def write_config(g, cfg, int_keys, float_keys, B):
    """config/<key>: one int32 / float64 dataset per field (at least 1-D), and config/batch."""
    for k in int_keys:
        g["config/" + k] = np.atleast_1d(np.asarray(cfg[k], np.int32))
    for k in float_keys:
        g["config/" + k] = np.atleast_1d(np.asarray(cfg[k], np.float64))
    g["config/batch"] = np.array([B], np.int32)


def write_state(g, model):
    """params/<name> and buffers/<name> (BatchNorm running statistics), float32."""
    for n, p in model.named_parameters():
        g["params/" + n] = f32(p)
    for n, b in bn_buffers(model):
        g["buffers/" + n] = f32(b)


def write_step_results(g, model, loss, acts):
    """After the training step's backward: expected/loss, expected/activations/<name> (names starting
    with "_" are not tensors and left out), every gradient and the BatchNorm buffers after the step."""
    g["expected/loss"] = np.array([loss.item()], np.float64)
    for n, a in acts.items():
        if not n.startswith("_"):
            g["expected/activations/" + n] = f32(a)
    for n, p in model.named_parameters():
        g["expected/grads/" + n] = f32(p.grad)
    for n, b in bn_buffers(model):
        g["expected/buffers/" + n] = f32(b)


def main(argv, doc, write_file):
    """Parses `OUT.h5 [--seed S] [--double]` (doc: the script's description) and calls
    write_file(f, seed, double) with OUT.h5 open for writing, torch on one thread."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--double", action="store_true", help="compute in float64")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    import h5py
    with h5py.File(a.out, "w") as f:
        write_file(f, a.seed, a.double)
    return 0
