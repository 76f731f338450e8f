"""Reference for bench_extract.sh: a ViT-B/16 forward (CLIP layout: pre-norm, quick GELU, ln_post
on every token, 768 -> 512 projection, 224x224, 197 tokens) in plain PyTorch fp32 with random
weights, 2 threads, batch 8; prints {"images_per_s": ...}. Timing only (the numerics are checked
against tests/ref/vit_ref.py by the ViT's own tests)."""
import json
import time

import torch

torch.set_num_threads(2)
D, L, H, M, P, S, OUT = 768, 12, 12, 3072, 16, 224, 512
T = 1 + (S // P) ** 2
g = torch.Generator().manual_seed(0)


def r(*shape):
    return torch.randn(*shape, generator=g) * 0.02


conv = torch.nn.Conv2d(3, D, P, P, bias=False)
cls, pos, proj = r(D), r(T, D), r(OUT, D)
blocks = [dict(qkv_w=r(3 * D, D), qkv_b=r(3 * D), o_w=r(D, D), o_b=r(D), f1_w=r(M, D), f1_b=r(M),
               f2_w=r(D, M), f2_b=r(D)) for _ in range(L)]
ln = torch.nn.functional.layer_norm


def forward(x):
    B = x.shape[0]
    x = conv(x).flatten(2).transpose(1, 2)
    x = ln(torch.cat([cls.expand(B, 1, D), x], 1) + pos, (D,))
    for b in blocks:
        h = ln(x, (D,))
        q, k, v = (h @ b["qkv_w"].T + b["qkv_b"]).reshape(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)
        a = torch.softmax(q @ k.transpose(-1, -2) * (D // H) ** -0.5, -1)
        x = x + (a @ v).transpose(1, 2).reshape(B, T, D) @ b["o_w"].T + b["o_b"]
        h = ln(x, (D,)) @ b["f1_w"].T + b["f1_b"]
        x = x + (h * torch.sigmoid(1.702 * h)) @ b["f2_w"].T + b["f2_b"]
    return ln(x, (D,)) @ proj.T, a.mean(1)[:, 0, 1:]


x = torch.randn(8, 3, S, S, generator=g)
with torch.no_grad():
    forward(x)
    n, t = 1, time.perf_counter()
    for _ in range(n):
        forward(x)
    dt = time.perf_counter() - t
print(json.dumps({"images_per_s": 8 * n / dt}))
