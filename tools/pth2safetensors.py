#!/usr/bin/python3
"""pth2safetensors.py IN.pth OUT.safetensors -- an official PyTorch I2P-MAE checkpoint (torch.save of
{'base_model': state_dict, ...}, or {'model': ...}, or a bare state dict) as safetensors for
`i2pmae import`. The DataParallel prefix 'module.' is stripped; every tensor is kept as it is
(CLIP's included: import lists and ignores them). Loading uses torch.load(weights_only=True), which
refuses arbitrary pickled objects (torch 1.13's also refuses the Python floats an official
checkpoint keeps in 'metrics'); --trusted loads with the full unpickler (only for files you trust). Debian: apt-get install python3-torch. Round trip: docs/interop.md.
"""
import argparse
import os
import pickle
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_format  # noqa: E402


def state_dict_of(obj, path):
    if isinstance(obj, dict):
        for key in ("base_model", "model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                return obj[key], key
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj, None
    raise ValueError("%s: no 'base_model', 'model' or 'state_dict' entry and not a state dict" % path)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--trusted", action="store_true", help="full unpickler (arbitrary code: trusted files only)")
    a = ap.parse_args(argv)
    try:
        obj = torch.load(a.input, map_location="cpu", weights_only=not a.trusted)
    except pickle.UnpicklingError as e:
        sys.stderr.write("%s: torch.load(weights_only=True) refused the file (%s). torch 1.13's safe loader\n"
                         "cannot even read the Python floats of an official checkpoint's 'metrics'; if you\n"
                         "trust the file, run again with --trusted.\n" % (a.input, str(e).split(". ")[-1][:200]))
        return 1
    sd, entry = state_dict_of(obj, a.input)
    out = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            continue
        name = k[len("module."):] if k.startswith("module.") else k
        if name in out:
            raise ValueError("%s: %s appears twice once 'module.' is stripped" % (a.input, name))
        out[name] = v
    st_format.write(a.output, out, {"format": "pt", "source": os.path.basename(a.input),
                                    "source_entry": entry or "(state dict)"})
    print("%s: %d tensors from %s['%s'] -> %s" % (a.input, len(out), os.path.basename(a.input),
                                                   entry or "", a.output))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
