#!/usr/bin/python3
"""safetensors2pth.py IN.safetensors OUT.pth -- an `i2pmae export --format official` file as the
checkpoint the official PyTorch I2P-MAE loads: torch.save({'base_model': state_dict}) (--entry
changes the key). Its model then takes it with load_state_dict(ckpt['base_model'], strict=False)
(strict=False: the official model also holds CLIP, which the file does not carry).
Debian: apt-get install python3-torch. Round trip: docs/interop.md.
"""
import argparse
import collections
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_format  # noqa: E402


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--entry", default="base_model", help="key of the state dict in the saved dict")
    a = ap.parse_args(argv)
    tensors, meta = st_format.read(a.input)
    sd = collections.OrderedDict((k, v.clone()) for k, v in tensors.items())
    obj = {a.entry: sd}
    if "i2pmae_config" in meta:
        obj["i2pmae_config"] = meta["i2pmae_config"]
    torch.save(obj, a.output)
    print("%s: %d tensors -> %s['%s']" % (a.input, len(sd), a.output, a.entry))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
