"""finetune_torch.py -- the PyTorch side of tests/bench/bench_finetune.sh: one fine-tuning training
step of the reference classifier (tests/ref/classifier_ref.py, float32) at the spec's ModelNet40
configuration (1024 points, groups 512/256/64, group sizes 48,24,24, radii 0.24,0.48,0.96,
mean+max pooling, smoothing 0.2, 40 classes), then the eval-mode forward in clouds per second.

  finetune_torch.py [--batch 32] [--steps 1] [--warmup 1] [--threads 2] [--eval-reps 2]

A step = tokenize (numpy FPS + kNN, model3d_ref_data.py) + forward + loss + backward +
clip_grad_norm_(10) + AdamW, as the C step (classifier_train_step + clip + adamw_step). Drop path
and dropout masks are drawn with torch's generator (same rates as the C side). Prints one JSON line
and "ref_seconds_per_step X", "ref_cpu_seconds_per_step X", "ref_train_vmhwm_kb X",
"ref_eval_clouds_per_s X", "ref_eval_cpu_per_cloud X" (CPU seconds per cloud), "ref_vmhwm_kb X".
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "ref"))
from classifier_ref import Classifier, smooth_ce  # noqa: E402
from model3d_ref import param_groups  # noqa: E402
from model3d_ref_data import config, tokenize  # noqa: E402


def vm_hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def spec_config():
    cfg = config("spec")
    cfg.update(points=1024, k=[48, 24, 24], radius=[0.24, 0.48, 0.96], pooling="mean+max", smoothing=0.2,
               n_classes=40, head_hidden=256, dropout=0.5, drop_path=0.1)
    return cfg


def masks(cfg, B):
    nb = sum(cfg["depths"])
    rates = torch.tensor([cfg["drop_path"] * i / (nb - 1) for i in range(nb)])
    keep = (torch.rand(B, nb, 2) >= rates[None, :, None]).float()
    drop_path = keep / (1.0 - rates)[None, :, None]
    p = cfg["dropout"]
    dropout = (torch.rand(B, 2, cfg["head_hidden"]) >= p).float() / (1.0 - p)
    return drop_path, dropout


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-reps", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    base_kb = vm_hwm_kb()
    cfg = spec_config()
    B = a.batch
    torch.manual_seed(0)
    model = Classifier(cfg)
    model.train()
    opt = torch.optim.AdamW(param_groups(model), lr=5e-4, betas=(0.9, 0.999), eps=1e-8)
    n_params = sum(p.numel() for p in model.parameters())
    rng = np.random.default_rng(1)
    points = rng.uniform(-1, 1, (B, cfg["points"], 3)).astype(np.float32)
    labels = torch.from_numpy(rng.integers(0, cfg["n_classes"], B)).long()
    times = []
    for it in range(a.steps + a.warmup):
        t0, c0 = time.perf_counter(), time.process_time()
        tok = tokenize(points, cfg)
        t1 = time.perf_counter()
        dp, do = masks(cfg, B)
        opt.zero_grad(set_to_none=False)
        logits, _ = model(points, tok, dp, do)
        loss = smooth_ce(logits, labels, cfg["smoothing"])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        t2, c2 = time.perf_counter(), time.process_time()
        if it >= a.warmup:
            times.append((t2 - t0, t1 - t0, c2 - c0))
        print("step %d: %.3f s (tokenize %.3f s) loss %.4f" % (it, t2 - t0, t1 - t0, loss.item()), flush=True)
    train_kb = vm_hwm_kb()
    model.eval()
    with torch.no_grad():
        model(points, tokenize(points, cfg))  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(a.eval_reps):
            model(points, tokenize(points, cfg))
        eval_s, eval_cpu = time.perf_counter() - t0, time.process_time() - c0
    cps = a.eval_reps * B / eval_s
    all_kb = vm_hwm_kb()
    step_s = sum(t[0] for t in times) / len(times)
    step_cpu = sum(t[2] for t in times) / len(times)
    tok_s = sum(t[1] for t in times) / len(times)
    cloud_cpu = eval_cpu / (a.eval_reps * B)
    print('{"bench": "finetune_ref", "batch": %d, "points": %d, "threads": %d, "params": %d, "steps": %d, '
          '"seconds_per_step": %.4f, "cpu_seconds_per_step": %.4f, "tokenize_seconds_per_step": %.4f, '
          '"start_vmhwm_kb": %d, "train_vmhwm_kb": %d, "eval_clouds_per_s": %.2f, '
          '"eval_cpu_seconds_per_cloud": %.4f, "vmhwm_kb": %d}'
          % (B, cfg["points"], a.threads, n_params, len(times), step_s, step_cpu, tok_s, base_kb, train_kb, cps,
             cloud_cpu, all_kb))
    print("ref_seconds_per_step %.4f\nref_cpu_seconds_per_step %.4f\nref_train_vmhwm_kb %d\n"
          "ref_eval_clouds_per_s %.3f\nref_eval_cpu_per_cloud %.4f\nref_vmhwm_kb %d"
          % (step_s, step_cpu, train_kb, cps, cloud_cpu, all_kb))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
