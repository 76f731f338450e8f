"""PyTorch side of bench_vit.sh: a CLIP-ViT-B/16-sized model (224 px, patch 16, width 768, 12 blocks,
12 heads, mlp 3072, pre-norm, projection 768 -> 512 on every token) built from standard modules
(nn.TransformerEncoderLayer with norm_first: PyTorch's fused inference path for these blocks; erf
GELU, as quick GELU has no fused path), eval + no_grad, 2 threads. Random weights.
Usage: vit_torch.py BATCH ITERS fp32|bf16   -> prints "images_per_s X" (the best of ITERS timed
batches after a warm-up: robust on a shared machine, as for ours)
bf16 = model.to(torch.bfloat16) with bf16 input: torch 1.13's bf16 autocast fails in the fused
multi-head attention on CPU (docs platform.md), so autocast is not used."""
import sys
import time

import torch

torch.set_num_threads(2)
batch, iters, prec = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]


class ViT(torch.nn.Module):
    def __init__(self, D=768, depth=12, heads=12, mlp=3072, patch=16, image=224, out=512):
        super().__init__()
        g = image // patch
        self.patch = torch.nn.Conv2d(3, D, patch, patch, bias=False)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, D) * 0.02)
        self.pos = torch.nn.Parameter(torch.randn(1, 1 + g * g, D) * 0.02)
        self.pre = torch.nn.LayerNorm(D)
        layer = torch.nn.TransformerEncoderLayer(D, heads, mlp, dropout=0.0, activation="gelu",
                                                 batch_first=True, norm_first=True)
        self.blocks = torch.nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.post = torch.nn.LayerNorm(D)
        self.proj = torch.nn.Linear(D, out, bias=False)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        x = self.blocks(self.pre(x))
        return self.proj(self.post(x))


model = ViT().eval()
x = torch.randn(batch, 3, 224, 224)
if prec == "bf16":
    model, x = model.to(torch.bfloat16), x.to(torch.bfloat16)
with torch.no_grad():
    model(x)  # warm-up
    best = 0.0
    for _ in range(iters):
        t0 = time.perf_counter()
        model(x)
        best = max(best, batch / (time.perf_counter() - t0))
print(f"images_per_s {best:.4f}")
