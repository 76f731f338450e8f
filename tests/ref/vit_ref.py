"""Reference for the 2D ViT (src/vit*.c), written here from the model definitions (no downloaded code).

Usage: vit_ref.py OUTDIR
Builds two small random ViTs (width 32, depth 3, heads 4, patch 8, 32x32 images) and writes
  OUTDIR/clip.safetensors   Hugging Face CLIP naming, F32, with a text tower, an I64 position_ids
                            buffer and logit_scale that the loader must ignore; quick GELU,
                            pre-layernorm, visual projection 32 -> 16
  OUTDIR/timm.safetensors   timm naming, blocks in BF16 and the rest in F16, with a classifier head
                            to ignore; erf GELU, no pre-norm, eps 1e-6
  OUTDIR/images.h5          /images (3,3,32,32) float32
  OUTDIR/{clip,timm}_expected.h5   /patch (N,16,C), /cls (N,C), /saliency (N,4,4), computed in float64
                            from the weights exactly as stored (F16/BF16 values rounded first).
"""
import json
import os
import struct
import sys

import h5py
import numpy as np
import torch

torch.set_num_threads(2)

D, DEPTH, HEADS, P, S, MLP, OUT = 32, 3, 4, 8, 32, 64, 16
G = S // P
T = 1 + G * G


def random_weights(gen, clip):
    """Parameters in the model's own (PyTorch) layout, float32."""
    def n(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).float()
    w = {
        "patch_w": n(D, 3, P, P, scale=(3 * P * P) ** -0.5),
        "patch_b": torch.zeros(D) if clip else n(D, scale=0.1),
        "cls": n(D, scale=0.5), "pos": n(T, D, scale=0.5),
        "norm_w": 1 + n(D, scale=0.1), "norm_b": n(D, scale=0.1),
    }
    if clip:
        w["pre_w"], w["pre_b"] = 1 + n(D, scale=0.1), n(D, scale=0.1)
        w["proj"] = n(OUT, D, scale=D ** -0.5)
    for l in range(DEPTH):
        w[f"{l}.ln1_w"], w[f"{l}.ln1_b"] = 1 + n(D, scale=0.1), n(D, scale=0.1)
        w[f"{l}.qkv_w"], w[f"{l}.qkv_b"] = n(3 * D, D, scale=D ** -0.5), n(3 * D, scale=0.1)
        w[f"{l}.proj_w"], w[f"{l}.proj_b"] = n(D, D, scale=D ** -0.5), n(D, scale=0.1)
        w[f"{l}.ln2_w"], w[f"{l}.ln2_b"] = 1 + n(D, scale=0.1), n(D, scale=0.1)
        w[f"{l}.fc1_w"], w[f"{l}.fc1_b"] = n(MLP, D, scale=D ** -0.5), n(MLP, scale=0.1)
        w[f"{l}.fc2_w"], w[f"{l}.fc2_b"] = n(D, MLP, scale=MLP ** -0.5), n(D, scale=0.1)
    return w


def forward(w, images, clip):
    """The ViT in float64: returns patch (N,G*G,C), cls (N,C), saliency (N,G,G)."""
    w = {k: v.double() for k, v in w.items()}
    x = torch.nn.functional.conv2d(images.double(), w["patch_w"], w["patch_b"], stride=P)
    B = x.shape[0]
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([w["cls"].expand(B, 1, D), x], 1) + w["pos"]
    eps = 1e-5 if clip else 1e-6
    ln = lambda t, a, b: torch.nn.functional.layer_norm(t, (D,), a, b, eps)
    if clip:
        x = ln(x, w["pre_w"], w["pre_b"])
    dh = D // HEADS
    for l in range(DEPTH):
        h = ln(x, w[f"{l}.ln1_w"], w[f"{l}.ln1_b"])
        qkv = (h @ w[f"{l}.qkv_w"].T + w[f"{l}.qkv_b"]).reshape(B, T, 3, HEADS, dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax(q @ k.transpose(-1, -2) * dh ** -0.5, dim=-1)
        o = (attn @ v).transpose(1, 2).reshape(B, T, D)
        x = x + o @ w[f"{l}.proj_w"].T + w[f"{l}.proj_b"]
        h = ln(x, w[f"{l}.ln2_w"], w[f"{l}.ln2_b"]) @ w[f"{l}.fc1_w"].T + w[f"{l}.fc1_b"]
        h = h * torch.sigmoid(1.702 * h) if clip else torch.nn.functional.gelu(h)
        x = x + h @ w[f"{l}.fc2_w"].T + w[f"{l}.fc2_b"]
    sal = attn.mean(1)[:, 0, 1:].reshape(B, G, G)
    y = ln(x, w["norm_w"], w["norm_b"])
    if clip:
        y = y @ w["proj"].T
    return y[:, 1:].float().numpy(), y[:, 0].float().numpy(), sal.float().numpy()


def clip_names(w, gen):
    e = "vision_model.embeddings."
    t = {e + "patch_embedding.weight": w["patch_w"], e + "class_embedding": w["cls"],
         e + "position_embedding.weight": w["pos"],
         e + "position_ids": torch.arange(T, dtype=torch.int64)[None],
         "vision_model.pre_layrnorm.weight": w["pre_w"], "vision_model.pre_layrnorm.bias": w["pre_b"],
         "vision_model.post_layernorm.weight": w["norm_w"], "vision_model.post_layernorm.bias": w["norm_b"],
         "visual_projection.weight": w["proj"],
         # the text tower of a full CLIP file: present, ignored
         "text_model.embeddings.token_embedding.weight": torch.randn(50, 24, generator=gen),
         "text_model.embeddings.position_ids": torch.arange(7, dtype=torch.int64)[None],
         "text_model.encoder.layers.0.self_attn.q_proj.weight": torch.randn(24, 24, generator=gen),
         "text_projection.weight": torch.randn(OUT, 24, generator=gen), "logit_scale": torch.tensor(4.6)}
    for l in range(DEPTH):
        p = f"vision_model.encoder.layers.{l}."
        qw, kw, vw = w[f"{l}.qkv_w"].split(D)
        qb, kb, vb = w[f"{l}.qkv_b"].split(D)
        t.update({p + "layer_norm1.weight": w[f"{l}.ln1_w"], p + "layer_norm1.bias": w[f"{l}.ln1_b"],
                  p + "self_attn.q_proj.weight": qw, p + "self_attn.q_proj.bias": qb,
                  p + "self_attn.k_proj.weight": kw, p + "self_attn.k_proj.bias": kb,
                  p + "self_attn.v_proj.weight": vw, p + "self_attn.v_proj.bias": vb,
                  p + "self_attn.out_proj.weight": w[f"{l}.proj_w"], p + "self_attn.out_proj.bias": w[f"{l}.proj_b"],
                  p + "layer_norm2.weight": w[f"{l}.ln2_w"], p + "layer_norm2.bias": w[f"{l}.ln2_b"],
                  p + "mlp.fc1.weight": w[f"{l}.fc1_w"], p + "mlp.fc1.bias": w[f"{l}.fc1_b"],
                  p + "mlp.fc2.weight": w[f"{l}.fc2_w"], p + "mlp.fc2.bias": w[f"{l}.fc2_b"]})
    return t


def timm_names(w, gen):
    t = {"patch_embed.proj.weight": w["patch_w"], "patch_embed.proj.bias": w["patch_b"],
         "cls_token": w["cls"].reshape(1, 1, D), "pos_embed": w["pos"].reshape(1, T, D),
         "norm.weight": w["norm_w"], "norm.bias": w["norm_b"],
         "head.weight": torch.randn(10, D, generator=gen), "head.bias": torch.zeros(10)}
    for l in range(DEPTH):
        p = f"blocks.{l}."
        t.update({p + "norm1.weight": w[f"{l}.ln1_w"], p + "norm1.bias": w[f"{l}.ln1_b"],
                  p + "attn.qkv.weight": w[f"{l}.qkv_w"], p + "attn.qkv.bias": w[f"{l}.qkv_b"],
                  p + "attn.proj.weight": w[f"{l}.proj_w"], p + "attn.proj.bias": w[f"{l}.proj_b"],
                  p + "norm2.weight": w[f"{l}.ln2_w"], p + "norm2.bias": w[f"{l}.ln2_b"],
                  p + "mlp.fc1.weight": w[f"{l}.fc1_w"], p + "mlp.fc1.bias": w[f"{l}.fc1_b"],
                  p + "mlp.fc2.weight": w[f"{l}.fc2_w"], p + "mlp.fc2.bias": w[f"{l}.fc2_b"]})
    return t


DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}


def write_safetensors(path, tensors, metadata):
    """The safetensors format, written directly: u64 header length, JSON header, raw data."""
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    images = torch.randn(3, 3, S, S, generator=gen)
    with h5py.File(os.path.join(out, "images.h5"), "w") as f:
        f["images"] = images.numpy()
    for clip in (True, False):
        w = random_weights(gen, clip)
        if not clip:  # store blocks in BF16 and the rest in F16; the reference uses the rounded values
            w = {k: v.to(torch.bfloat16 if k[0].isdigit() else torch.float16).float() for k, v in w.items()}
        tensors = (clip_names if clip else timm_names)(w, gen)
        if not clip:
            tensors = {k: v.to(torch.bfloat16 if k.startswith("blocks.") else torch.float16)
                       for k, v in tensors.items()}
        name = "clip" if clip else "timm"
        write_safetensors(os.path.join(out, name + ".safetensors"), tensors, {"format": "pt", "heads": str(HEADS)})
        patch, cls, sal = forward(w, images, clip)
        with h5py.File(os.path.join(out, name + "_expected.h5"), "w") as f:
            f["patch"], f["cls"], f["saliency"] = patch, cls, sal


if __name__ == "__main__":
    main()
