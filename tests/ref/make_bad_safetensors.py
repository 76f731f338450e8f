"""Writes a well-formed safetensors file whose CLIP vision tensors do not match ViT-B/16 (a patch
embedding of the wrong shape), for the 'weights do not match the configuration' test.
usage: make_bad_safetensors.py OUT.safetensors"""
import json
import struct
import sys

import numpy as np

t = np.zeros((768, 3, 8, 8), np.float32)  # ViT-B/16 needs (768, 3, 16, 16)
name = "vision_model.embeddings.patch_embedding.weight"
header = {name: {"dtype": "F32", "shape": list(t.shape), "data_offsets": [0, t.nbytes]}}
h = json.dumps(header).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + t.tobytes())
