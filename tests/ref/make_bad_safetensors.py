"""Writes a small valid timm-named ViT safetensors file and broken variants of it (Python standard
library only, so the bad-weights tests run everywhere). Usage: make_bad_safetensors.py OUTDIR
Model: width 8, depth 1, heads 2 (metadata), patch 8, 16x16 images, mlp 16.
Files: good.safetensors, missing.safetensors (no blocks.0.attn.proj.weight), shape (fc2 weight
transposed), dtype (norm.weight stored as I32), truncated (last 64 bytes cut), overlap (two tensors
share bytes), past_end (an offset beyond the data), header_long (header length > file),
not_json, noproj_clip (CLIP naming without visual_projection.weight), zero_patch (patch
embedding [8, 3, 0, 0]), overlap_empty (an empty tensor between two overlapping ones), duplicate
(a tensor named twice), nan_weight (good with a NaN in blocks.0.mlp.fc2.weight)."""
import json
import os
import struct
import sys

D, M, P, S = 8, 16, 8, 16
T = 1 + (S // P) ** 2


def timm_shapes():
    s = {"patch_embed.proj.weight": [D, 3, P, P], "patch_embed.proj.bias": [D], "cls_token": [1, 1, D],
         "pos_embed": [1, T, D], "norm.weight": [D], "norm.bias": [D]}
    p = "blocks.0."
    s.update({p + "norm1.weight": [D], p + "norm1.bias": [D], p + "attn.qkv.weight": [3 * D, D],
              p + "attn.qkv.bias": [3 * D], p + "attn.proj.weight": [D, D], p + "attn.proj.bias": [D],
              p + "norm2.weight": [D], p + "norm2.bias": [D], p + "mlp.fc1.weight": [M, D],
              p + "mlp.fc1.bias": [M], p + "mlp.fc2.weight": [D, M], p + "mlp.fc2.bias": [D]})
    return s


def clip_shapes():
    e, p = "vision_model.embeddings.", "vision_model.encoder.layers.0."
    s = {e + "patch_embedding.weight": [D, 3, P, P], e + "class_embedding": [D],
         e + "position_embedding.weight": [T, D], "vision_model.pre_layrnorm.weight": [D],
         "vision_model.pre_layrnorm.bias": [D], "vision_model.post_layernorm.weight": [D],
         "vision_model.post_layernorm.bias": [D]}
    for n, shape in (("layer_norm1.weight", [D]), ("layer_norm1.bias", [D]), ("layer_norm2.weight", [D]),
                     ("layer_norm2.bias", [D]), ("mlp.fc1.weight", [M, D]), ("mlp.fc1.bias", [M]),
                     ("mlp.fc2.weight", [D, M]), ("mlp.fc2.bias", [D])):
        s[p + n] = shape
    for q in "qkv":
        s[p + f"self_attn.{q}_proj.weight"], s[p + f"self_attn.{q}_proj.bias"] = [D, D], [D]
    s[p + "self_attn.out_proj.weight"], s[p + "self_attn.out_proj.bias"] = [D, D], [D]
    return s


def build(shapes, dtypes=None):
    """Header dict and data bytes (values 0.01 * i as float32)."""
    header, data = {"__metadata__": {"heads": "2"}}, b""
    for name, shape in shapes.items():
        n = 1
        for d in shape:
            n *= d
        raw = struct.pack(f"<{n}f", *[0.01 * (i % 50) for i in range(n)])
        header[name] = {"dtype": (dtypes or {}).get(name, "F32"), "shape": shape,
                        "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    return header, data


def write(path, header, data, header_len=None):
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h) if header_len is None else header_len) + h + data)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    j = lambda n: os.path.join(out, n + ".safetensors")
    h, d = build(timm_shapes())
    write(j("good"), h, d)
    s = timm_shapes()
    del s["blocks.0.attn.proj.weight"]
    write(j("missing"), *build(s))
    s = timm_shapes()
    s["blocks.0.mlp.fc2.weight"] = [M, D]
    write(j("shape"), *build(s))
    write(j("dtype"), *build(timm_shapes(), {"norm.weight": "I32"}))
    write(j("truncated"), h, d[:-64])
    ho = json.loads(json.dumps(h))
    a, b = ho["norm.weight"]["data_offsets"], ho["norm.bias"]["data_offsets"]
    ho["norm.bias"]["data_offsets"] = [a[0] + 4, a[0] + 4 + (b[1] - b[0])]
    write(j("overlap"), ho, d)
    hp = json.loads(json.dumps(h))
    hp["norm.bias"]["data_offsets"] = [len(d) + 1000, len(d) + 1000 + D * 4]
    write(j("past_end"), hp, d)
    write(j("header_long"), h, d, header_len=10 ** 9)
    with open(j("not_json"), "wb") as f:
        f.write(struct.pack("<Q", 16) + b"this is not json" + b"\0" * 32)
    write(j("noproj_clip"), *build(clip_shapes()))
    s = timm_shapes()
    s["patch_embed.proj.weight"] = [D, 3, 0, 0]
    write(j("zero_patch"), *build(s))
    he = json.loads(json.dumps(h))  # an empty tensor between two overlapping ones
    a = he["norm.weight"]["data_offsets"]
    he["cls_token"]["data_offsets"] = [a[0] + 4, a[0] + 4]
    he["cls_token"]["shape"] = [1, 0, D]
    he["norm.bias"]["data_offsets"] = [a[0] + 8, a[0] + 8 + D * 4]
    write(j("overlap_empty"), he, d)
    a = h["blocks.0.mlp.fc2.weight"]["data_offsets"][0]  # a NaN weight: well-formed, NaN features
    write(j("nan_weight"), h, d[:a] + struct.pack("<f", float("nan")) + d[a + 4:])
    text = json.dumps(h)  # norm.bias named twice: the second entry would silently win
    dup = text[:-1] + ', "norm.bias": ' + json.dumps(h["norm.bias"]) + "}"
    with open(j("duplicate"), "wb") as f:
        raw = dup.encode() + b" " * (-len(dup) % 8)
        f.write(struct.pack("<Q", len(raw)) + raw + d)


if __name__ == "__main__":
    main()
