"""official_names_ref.py -- the I2P-MAE 3D network as a PyTorch module under the OFFICIAL code's
parameter names (ZrrSkywalker/I2P-MAE models/I2P_MAE.py; the mapping is in docs/interop.md),
written by us from the documented architecture (i2pmae-spec.md sections 5 and 8, docs/model3d.md):
no code of the official repository. The tokenizer and mask propagation are tests/ref's
(model3d_ref_data.py: the rules of include/pointops.h, FPS kernel quirk included).

Checks for tests/e2e/test_interop.sh (each prints OK lines and exits 1 on a failure):
  check-export FILE.safetensors DATA.h5 FEATURES.h5
      loads an `i2pmae export` file with load_state_dict(strict=True) and compares the encoder's
      global max- and mean-pooled features (official SVM path, eval=True) of DATA's clouds with
      `i2pmae encode`'s FEATURES.h5.
  make OUT.pth DATA.h5 EXPECTED.h5 --config-json JSON [--seed S]
      (JSON: configuration fields over model3d_ref_data's "tiny", or {"base": "spec"})
      a random official model (BatchNorm statistics and norm parameters perturbed) saved as the
      official code does: torch.save({'base_model': {'module.' + name: tensor}}), plus a CLIP
      tensor; EXPECTED.h5 holds its features of DATA's clouds (global_max, global_mean).
  compare FEATURES.h5 EXPECTED.h5      features of `i2pmae encode` against EXPECTED.h5.
  check-decoder FILE.safetensors OURS.h5
      the decoder: the official module (fusion input [encoder skip | interpolated]) loaded from
      FILE against our reference (tests/ref/model3d_ref.py, [interpolated | skip]) loaded from
      OURS.h5 (`i2pmae import` of FILE) on the same clouds and mask: equal; and the same
      reference with the fusion weights copied without the column swap: different.
  check-finetune FILE.safetensors
      the official fine-tuning model (I2P_MAE_ModelNet40 / _ScanObjectNN: h_encoder without
      encoder_norms, norm, cls_head_finetune = Linear, BN, ReLU, Dropout, Linear, BN, ReLU, Dropout,
      Linear), built from the file's i2pmae_config (our classifier configuration), loads an
      `i2pmae export` of a fine-tuning checkpoint with load_state_dict(strict=True); prints the
      tensor count; num_batches_tracked are int64 scalars. (Names and shapes only: no forward.)
  bad KIND EXPORT.safetensors OUT.safetensors
      a bad copy for import: truncated, duplicate (a name twice in the header), shape (a Conv1d
      weight as [out, in]), missing, unexpected, module (every name 'module.'-prefixed and a CLIP
      tensor: accepted), finetune, pointmae. KIND may be a comma-separated list; OUT then holds
      "{}" where each kind's name goes (one process for all: torch's import is most of the time).
Computed in float64 from the float32 weights.
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import model3d_ref_data as D  # noqa: E402
import st_format  # noqa: E402

TOL = 1e-4  # max|ours - ref| <= TOL * max|ref| + 1e-6 (float32 C against float64 reference)


# ---------------------------------------------------------------------------------------------
# Modules under the official names

class TokenEmbed(nn.Module):
    """first_conv / second_conv: Sequential(Conv1d, BatchNorm1d, ReLU, Conv1d) (indices 0, 1, 3)."""

    def __init__(self, cin, cout, hidden):
        super().__init__()
        h0, h1, h2 = hidden if cin == 3 else (cin, cin, cout)
        self.first_conv = nn.Sequential(nn.Conv1d(cin, h0, 1), nn.BatchNorm1d(h0), nn.ReLU(),
                                        nn.Conv1d(h0, h1, 1))
        self.second_conv = nn.Sequential(nn.Conv1d(2 * h1, h2, 1), nn.BatchNorm1d(h2), nn.ReLU(),
                                         nn.Conv1d(h2, cout, 1))

    def forward(self, groups):  # (N, k, C) -> (N, cout)
        f = self.first_conv(groups.transpose(1, 2))
        g = f.max(dim=2, keepdim=True)[0]
        f = self.second_conv(torch.cat([g.expand(-1, -1, f.shape[2]), f], dim=1))
        return f.max(dim=2)[0]


class Mlp(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Linear(c, 4 * c)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * c, c)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(c, 3 * c, bias=False)
        self.proj = nn.Linear(c, c)

    def forward(self, x):  # (N, C): one sample's visible tokens, no padding
        n, c = x.shape
        q, k, v = self.qkv(x).reshape(n, 3, self.heads, c // self.heads).permute(1, 2, 0, 3)
        a = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        return self.proj((a.softmax(dim=-1) @ v).transpose(0, 1).reshape(n, c))


class Block(nn.Module):
    def __init__(self, c, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(c)
        self.attn = Attention(c, heads)
        self.norm2 = nn.LayerNorm(c)
        self.mlp = Mlp(c)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Blocks(nn.Module):
    """A stage's blocks; the positional embedding is added before every block."""

    def __init__(self, c, depth, heads):
        super().__init__()
        self.blocks = nn.ModuleList([Block(c, heads) for _ in range(depth)])

    def forward(self, x, pos):
        for b in self.blocks:
            x = b(x + pos)
        return x


def pos_embed(c):
    return nn.Sequential(nn.Linear(3, c), nn.GELU(), nn.Linear(c, c))


class HEncoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d = cfg["dims"]
        self.token_embed = nn.ModuleList([TokenEmbed(3 if s == 0 else d[s - 1], d[s], cfg["embed_hidden"])
                                          for s in range(3)])
        self.encoder_pos_embeds = nn.ModuleList([pos_embed(d[s]) for s in range(3)])
        self.encoder_blocks = nn.ModuleList([Blocks(d[s], cfg["depths"][s], cfg["heads"]) for s in range(3)])
        self.encoder_norms = nn.ModuleList([nn.LayerNorm(d[s]) for s in range(3)])


class ConvBNGELU(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.net = nn.Sequential(nn.Conv1d(cin, cout, 1), nn.BatchNorm1d(cout), nn.GELU())

    def forward(self, x):
        return self.net(x)


class ResBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.net1 = nn.Sequential(nn.Conv1d(c, c, 1), nn.BatchNorm1d(c), nn.GELU())
        self.net2 = nn.Sequential(nn.Conv1d(c, c, 1), nn.BatchNorm1d(c))
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.net2(self.net1(x)) + x)


class Extraction(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.operation = nn.Sequential(ResBlock(c))

    def forward(self, x):
        return self.operation(x)


class TokenProp(nn.Module):
    """fuse takes [encoder skip | interpolated] along its input channels."""

    def __init__(self, c_skip, c_interp, cout):
        super().__init__()
        self.fuse = ConvBNGELU(c_skip + c_interp, cout)
        self.extraction = Extraction(cout)

    def forward(self, xyz, xyz_coarse, skip, coarse):  # (G,3), (S,3), (G,Cs), (S,Ci)
        d = ((xyz[:, None, :] - xyz_coarse[None, :, :]) ** 2).sum(-1)
        d, idx = d.sort(dim=-1)
        w = 1.0 / (d[:, :3] + 1e-8)
        w = w / w.sum(dim=1, keepdim=True)
        interp = (coarse[idx[:, :3]] * w[:, :, None]).sum(dim=1)
        x = torch.cat([skip, interp], dim=-1).t()[None]
        return self.extraction(self.fuse(x))[0].t()


class OfficialI2PMAE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        d, dd = cfg["dims"], cfg["dec_dims"]
        self.h_encoder = HEncoder(cfg)
        self.mask_token = nn.Parameter(torch.zeros(1, dd[0]))
        self.h_decoder = nn.ModuleList([Blocks(dd[i], cfg["dec_depths"][i], cfg["heads"]) for i in range(2)])
        self.decoder_pos_embeds = nn.ModuleList([pos_embed(dd[i]) for i in range(2)])
        self.token_prop = nn.ModuleList([TokenProp(d[1], dd[0], dd[1])])
        self.decoder_norm = nn.LayerNorm(dd[1])
        k1 = cfg["k"][1]
        self.rec_head_3d = nn.Conv1d(dd[1], 3 * k1, 1)
        self.rec_head_2d = nn.Conv1d(dd[1], cfg["feat_dim"] * k1 * cfg["views"], 1)

    def encode(self, points, vis2):
        """points (B,P,3) float32 numpy; vis2 (B,G2) bool: the scale-2 visible tokens, propagated
        to scales 1 and 0 through the kNN sets. Returns per scale the list over samples of
        (visible indices, normalised stage outputs), and the tokenizer's output."""
        cfg, enc = self.cfg, self.h_encoder
        dt = self.mask_token.dtype
        tok = D.tokenize(points, cfg)
        vis = D.propagate_mask(tok, vis2)
        B = points.shape[0]
        k0 = cfg["k"][0]
        nb = torch.from_numpy(D.gather_rows(points, tok["knn0"])).to(dt) - \
            torch.from_numpy(tok["xyz0"]).to(dt)[:, :, None, :]
        full = enc.token_embed[0](nb.reshape(-1, k0, 3)).reshape(B, cfg["groups"][0], -1)
        outs = []
        for s in range(3):
            if s > 0:
                knn = torch.from_numpy(tok["knn%d" % s])
                g = torch.stack([full[b, knn[b]] for b in range(B)])
                full = enc.token_embed[s](g.reshape(-1, g.shape[2], g.shape[3])).reshape(B, g.shape[1], -1)
            full = full.clone()
            xyz = torch.from_numpy(tok["xyz%d" % s]).to(dt)
            per = []
            for b in range(B):
                idx = torch.from_numpy(np.nonzero(vis[s][b])[0])
                x = enc.encoder_blocks[s](full[b, idx], enc.encoder_pos_embeds[s](xyz[b, idx]))
                full[b, idx] = x  # masked tokens keep their embedding
                per.append((idx, enc.encoder_norms[s](x)))
            outs.append(per)
        return outs, tok, vis

    @torch.no_grad()
    def global_features(self, points):
        """The official SVM path (eval=True): every scale-2 token visible. -> (max, mean) (B, C)."""
        self.eval()
        outs, _, _ = self.encode(points, np.ones((points.shape[0], self.cfg["groups"][2]), bool))
        x = torch.stack([o for _, o in outs[2]])
        return x.max(dim=1)[0], x.mean(dim=1)

    @torch.no_grad()
    def decode(self, points, vis2):
        """Eval-mode pre-training forward up to the decoder output (B, G1, dec_dims[1])."""
        self.eval()
        outs, tok, vis = self.encode(points, vis2)
        dt = self.mask_token.dtype
        res = []
        for b in range(points.shape[0]):
            xyz2 = torch.from_numpy(tok["xyz2"][b]).to(dt)
            xyz1 = torch.from_numpy(tok["xyz1"][b]).to(dt)
            v = torch.from_numpy(np.nonzero(vis[2][b])[0])
            mk = torch.from_numpy(np.nonzero(~vis[2][b])[0])
            x0 = torch.cat([outs[2][b][1], self.mask_token.expand(len(mk), -1)], dim=0)
            c0 = torch.cat([xyz2[v], xyz2[mk]], dim=0)
            x0 = self.h_decoder[0](x0, self.decoder_pos_embeds[0](c0))
            skip = x0.new_zeros(xyz1.shape[0], self.cfg["dims"][1])
            skip[outs[1][b][0]] = outs[1][b][1]
            x1 = self.token_prop[0](xyz1, c0, skip, x0)
            x1 = self.h_decoder[1](x1, self.decoder_pos_embeds[1](xyz1))
            res.append(self.decoder_norm(x1))
        return torch.stack(res)


class OfficialFinetune(nn.Module):
    """The official fine-tuning model's tensors: the encoder without encoder_norms, norm and
    cls_head_finetune (its ReLU and Dropout modules hold no tensors: indices 2, 3, 6, 7)."""

    def __init__(self, cfg):
        super().__init__()
        enc = cfg["encoder"]
        self.h_encoder = HEncoder(enc)
        del self.h_encoder.encoder_norms
        d2, hid = enc["dims"][2], cfg["head_hidden"]
        width = 2 * d2 if cfg["pooling"] == "concat" else d2
        self.norm = nn.LayerNorm(d2)
        self.cls_head_finetune = nn.Sequential(
            nn.Linear(width, hid), nn.BatchNorm1d(hid), nn.ReLU(inplace=True), nn.Dropout(cfg["dropout"]),
            nn.Linear(hid, hid), nn.BatchNorm1d(hid), nn.ReLU(inplace=True), nn.Dropout(cfg["dropout"]),
            nn.Linear(hid, cfg["n_classes"]))


# ---------------------------------------------------------------------------------------------
# Files

def read_clouds(path, points):
    import h5py
    with h5py.File(path, "r") as f:
        name = "points" if "points" in f else "data"
        return np.ascontiguousarray(f[name][:, :points, :], dtype=np.float32)


def load_official(path, cfg=None):
    tensors, meta = st_format.read(path)
    if cfg is None:
        cfg = json.loads(meta["i2pmae_config"])
    model = OfficialI2PMAE(cfg)
    model.load_state_dict(tensors, strict=True)  # every name, shape and BN buffer
    return model.double(), cfg


def close(name, got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want).max()
    lim = TOL * np.abs(want).max() + 1e-6
    print("%-28s max|ref| %.3e  max|diff| %.3e  %s" % (name, np.abs(want).max(), err, "OK" if err <= lim else "NOT OK"))
    return err <= lim


def perturb(model, gen):
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))
        model.mask_token.normal_(0, 0.02, generator=gen)
        for n, b in model.named_buffers():
            if n.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif n.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))
            elif n.endswith("num_batches_tracked"):
                b.fill_(7)


def cmd_check_export(path, data, features):
    import h5py
    model, cfg = load_official(path)
    print("strict load of %s: %d tensors OK" % (path, len(model.state_dict())))
    gmax, gmean = model.global_features(read_clouds(data, cfg["points"]))
    with h5py.File(features, "r") as f:
        ok = close("global_max", f["global_max"][:], gmax.numpy())
        ok &= close("global_mean", f["global_mean"][:], gmean.numpy())
    return 0 if ok else 1


def cmd_check_finetune(path):
    tensors, meta = st_format.read(path)
    assert meta.get("i2pmae_kind") == "finetune", meta.get("i2pmae_kind")
    cfg = json.loads(meta["i2pmae_config"])
    model = OfficialFinetune(cfg)
    model.load_state_dict(tensors, strict=True)
    bad = [k for k, v in tensors.items() if k.endswith("num_batches_tracked") and (v.dtype != torch.int64 or v.dim())]
    assert not bad, bad
    assert not any(k.startswith("h_encoder.encoder_norms") for k in tensors)
    print("strict load of %s into the official fine-tuning model: %d tensors OK" % (path, len(tensors)))
    return 0


def cmd_make(out, data, expected, cfg_json, seed):
    import h5py
    over = json.loads(cfg_json)
    cfg = D.config(over.pop("base", "tiny"))  # model3d_ref_data's "tiny" or "spec"
    cfg.update(over)
    cfg["dec_dims"] = [cfg["dims"][2], cfg["dims"][1]]
    torch.manual_seed(seed)
    model = OfficialI2PMAE(cfg)
    perturb(model, torch.Generator().manual_seed(seed + 1))
    sd = {"module." + k: v.clone() for k, v in model.state_dict().items()}
    sd["module.clip_model.visual.proj"] = torch.randn(8, 4)  # the official file carries CLIP
    torch.save({"base_model": sd, "epoch": 3, "metrics": {"acc": 0.5}}, out)
    gmax, gmean = model.double().global_features(read_clouds(data, cfg["points"]))
    with h5py.File(expected, "w") as f:
        f["global_max"] = gmax.numpy()
        f["global_mean"] = gmean.numpy()
    print("%s: %d tensors (module. prefix, one CLIP tensor); %s: features of %d clouds"
          % (out, len(sd), expected, gmax.shape[0]))
    return 0


def cmd_compare(features, expected):
    import h5py
    with h5py.File(features, "r") as f, h5py.File(expected, "r") as g:
        ok = close("global_max", f["global_max"][:], g["global_max"][:])
        ok &= close("global_mean", f["global_mean"][:], g["global_mean"][:])
    return 0 if ok else 1


def load_ours(path, cfg, swap_fuse):
    """Our reference model (tests/ref/model3d_ref.py) from our checkpoint: /params and /buffers cut
    by the tensor table in its provenance attribute ('name offset count (shape) ...' per line;
    buffers after a '# buffers' line). swap_fuse = False undoes the import's column swap."""
    import h5py
    from model3d_ref import Model3D
    model = Model3D(dict(cfg, drop_path=0.0)).double()
    with h5py.File(path, "r") as f:
        flat = {"params": f["params"][:], "buffers": f["buffers"][:]}
        table = f.attrs["provenance"]
    table = table.decode() if isinstance(table, bytes) else table
    state, where = {}, "params"
    for line in table.splitlines():
        if line.startswith("# buffers"):
            where = "buffers"
            continue
        if not line or line.startswith("#"):
            continue
        name, off, cnt = line.split()[:3]
        state[name] = torch.from_numpy(flat[where][int(off):int(off) + int(cnt)].astype(np.float64))
    sd = model.state_dict()
    for k in sd:
        if k in state:
            sd[k] = state[k].reshape(sd[k].shape)
    if not swap_fuse:
        w = sd["decoder.1.interp.conv.weight"]
        d0, c1 = cfg["dec_dims"][0], cfg["dims"][1]
        sd["decoder.1.interp.conv.weight"] = torch.cat([w[:, d0:], w[:, :d0]], dim=1)
    missing = [k for k in sd if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError("%s: no table entry for %s" % (path, missing[0]))
    model.load_state_dict(sd)
    return model


def cmd_check_decoder(path, ours):
    model, cfg = load_official(path, None) if "i2pmae_config" in st_format.read(path)[1] else (None, None)
    if model is None:
        import h5py
        with h5py.File(ours, "r") as f:
            c = f.attrs["config"]
        cfg = json.loads(c.decode() if isinstance(c, bytes) else c)["model"]
        model, _ = load_official(path, cfg)
    B = 3
    rng = np.random.default_rng(4)
    pts = rng.uniform(-1, 1, (B, cfg["points"], 3)).astype(np.float32)
    nv = D.n_visible(cfg)
    visible = np.stack([np.sort(rng.permutation(cfg["groups"][2])[:nv]) for _ in range(B)]).astype(np.int32)
    vis2 = np.zeros((B, cfg["groups"][2]), bool)
    for b in range(B):
        vis2[b, visible[b]] = True
    want = model.decode(pts, vis2).numpy()
    feat = np.zeros((B, cfg["groups"][0], cfg["views"] * cfg["feat_dim"]), np.float32)
    ok = True
    for swap in (True, False):
        ref = load_ours(ours, cfg, swap)
        ref.eval()
        with torch.no_grad():
            _, _, _, acts = ref(pts, visible, feat)
        got = acts["dec1_out"].numpy()
        if swap:
            ok &= close("decoder output (imported)", got, want)
        else:
            err = np.abs(got - want).max()
            differs = err > 100 * (TOL * np.abs(want).max() + 1e-6)
            print("%-28s max|diff| %.3e  %s" % ("decoder, fusion not swapped", err,
                                                "differs: OK" if differs else "NOT OK (the check cannot fail)"))
            ok &= differs
    return 0 if ok else 1


def cmd_bad(kind, src, out):
    """Bad copies of an export for import's checks."""
    import collections
    import struct
    t, meta = st_format.read(src)
    t = collections.OrderedDict(t)
    meta.pop("i2pmae_config", None)  # import reads the shapes, not our configuration
    if kind == "truncated":
        data = open(src, "rb").read()
        open(out, "wb").write(data[:len(data) - 100])
        return 0
    if kind == "duplicate":  # a second entry for a name, in the header text
        data = open(src, "rb").read()
        n = struct.unpack("<Q", data[:8])[0]
        header = data[8:8 + n].decode().rstrip()
        h = json.loads(header)
        name = "decoder_norm.bias"
        extra = ',"%s":%s}' % (name, json.dumps(h[name], separators=(",", ":")))
        header = header[:-1] + extra
        hb = header.encode()
        hb += b" " * (-len(hb) % 8)
        open(out, "wb").write(struct.pack("<Q", len(hb)) + hb + data[8 + n:])
        return 0
    if kind == "shape":  # a Conv1d weight stored like a Linear one
        name = "h_encoder.token_embed.0.first_conv.0.weight"
        t[name] = t[name][:, :, 0].contiguous()
    elif kind == "missing":
        del t["h_encoder.encoder_norms.1.weight"]
    elif kind == "unexpected":
        t["h_encoder.encoder_blocks.0.blocks.9.norm1.weight"] = torch.ones(3)
    elif kind == "module":
        t = collections.OrderedDict(("module." + k, v) for k, v in t.items())
        t["module.clip_model.transformer.weight"] = torch.zeros(2, dtype=torch.float16)
    elif kind == "finetune":
        for k in [k for k in t if not k.startswith("h_encoder.")]:
            del t[k]
        t["norm.weight"] = torch.ones(4)
        t["cls_head_finetune.0.weight"] = torch.ones(4, 4)
    elif kind == "pointmae":
        t = collections.OrderedDict()
        t["MAE_encoder.encoder.first_conv.0.weight"] = torch.zeros(128, 3, 1)
        t["MAE_encoder.blocks.blocks.0.norm1.weight"] = torch.ones(384)
        t["MAE_decoder.blocks.blocks.0.norm1.weight"] = torch.ones(384)
        t["mask_token"] = torch.zeros(1, 1, 384)
        t["increase_dim.0.weight"] = torch.zeros(96, 384, 1)
    else:
        raise ValueError("unknown kind " + kind)
    st_format.write(out, t, meta)
    return 0


def main(argv):
    torch.set_num_threads(1)
    if not argv:
        print(__doc__)
        return 2
    cmd, args = argv[0], argv[1:]
    if cmd == "check-export":
        return cmd_check_export(*args)
    if cmd == "make":
        seed = 0
        if "--seed" in args:
            i = args.index("--seed")
            seed = int(args[i + 1])
            args = args[:i] + args[i + 2:]
        i = args.index("--config-json")
        cfg_json = args[i + 1]
        args = args[:i] + args[i + 2:]
        return cmd_make(args[0], args[1], args[2], cfg_json, seed)
    if cmd == "compare":
        return cmd_compare(*args)
    if cmd == "check-decoder":
        return cmd_check_decoder(*args)
    if cmd == "check-finetune":
        return cmd_check_finetune(*args)
    if cmd == "bad":
        kinds, src, out = args
        for kind in kinds.split(","):
            rc = cmd_bad(kind, src, out.replace("{}", kind) if "," in kinds else out)
            if rc:
                return rc
        return 0
    print("unknown command " + cmd)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
