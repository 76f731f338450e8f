"""Reference for bicubic.c: upsample random (g,g,C) grids to SxS with torch.nn.functional.interpolate
(bicubic, align_corners=False) and write grid, a few query pixels and the expected values to HDF5."""
import sys
import h5py
import numpy as np
import torch

out = sys.argv[1]
rng = np.random.default_rng(0)
g, C, S = 14, 5, 224
grid = rng.standard_normal((g, g, C)).astype(np.float32)
up = torch.nn.functional.interpolate(torch.from_numpy(grid).permute(2, 0, 1)[None], size=(S, S),
                                     mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()
pix = np.concatenate([rng.integers(0, S, size=(200, 2)), [[0, 0], [0, S - 1], [S - 1, S - 1], [S - 1, 0], [1, 2]]]).astype(np.int32)
with h5py.File(out, "w") as f:
    f["grid"] = grid
    f["pixels"] = pix
    f["expected"] = up[pix[:, 0], pix[:, 1]]
