"""st_format.py -- read and write the safetensors format with torch tensors (no pickle, no
dependency besides torch): 8-byte little-endian header length, a JSON header
{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}, then the raw data.
Used by tools/pth2safetensors.py, tools/safetensors2pth.py and the tests in tests/ref/.
"""
import json
import struct

import torch

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}


def write(path, tensors, metadata=None):
    """tensors: an ordered mapping name -> torch.Tensor (any dtype of DTYPES)."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in NAMES:
            raise ValueError("%s: dtype %s has no safetensors name" % (name, t.dtype))
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read(path):
    """-> (dict name -> torch.Tensor in file order, metadata dict). Checks offsets and sizes."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: too short for a safetensors file" % path)
    n = struct.unpack("<Q", data[:8])[0]
    if 8 + n > len(data):
        raise ValueError("%s: header length %d runs past the end of the file" % (path, n))

    def no_duplicates(pairs):
        d = {}
        for k, v in pairs:
            if k in d:
                raise ValueError("%s: tensor %s appears twice in the header" % (path, k))
            d[k] = v
        return d
    header = json.loads(data[8:8 + n].decode(), object_pairs_hook=no_duplicates)
    body = memoryview(data)[8 + n:]
    meta = header.pop("__metadata__", {}) or {}
    out = {}
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        dt = DTYPES[e["dtype"]]
        b, en = e["data_offsets"]
        if en > len(body):
            raise ValueError("%s: tensor %s runs past the end of the data (truncated file?)" % (path, name))
        shape = [int(s) for s in e["shape"]]
        numel = 1
        for s in shape:
            numel *= s
        if numel == 0:
            out[name] = torch.zeros(shape, dtype=dt)
            continue
        t = torch.frombuffer(bytearray(body[b:en]), dtype=torch.uint8).view(dt)
        if t.numel() != numel:
            raise ValueError("%s: tensor %s: %d bytes do not hold shape %s" % (path, name, en - b, shape))
        out[name] = t.reshape(shape)
    return out, meta
