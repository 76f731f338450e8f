#!/usr/bin/python3
"""roofline.py -- turns the output of bench_roofline (run with ONEDNN_VERBOSE=1) into the roofline
tables of docs/performance.md.

Usage: roofline.py RAW.txt GHZ THREADS VIT_PRECISION [DOC.md]

"Ours" = oneDNN's own verbose exec time of each primitive inside our ViT forward / 3D training step
(the *_insitu phases), summed per distinct primitive (same kind, implementation, memory formats,
attributes and shape) over one forward / step, the smallest such sum of the measured runs (the
totals too are the smallest of the runs); "alone" = the same primitive object executed in a loop on its own buffers
(best run) x the calls per forward/step; "any" = the matmul re-created with src/weights/dst in
format `any` (oneDNN's preferred layout), timed alone. Peak = the measured one
(ROOFLINE_PEAK_FP32 / ROOFLINE_PEAK_BF16 in GFLOP/s, from tests/bench/cpu_peak.c on THREADS threads);
without them GHZ x 64 fp32 FLOP/cycle/core x THREADS (bf16: x2), the table saying so. With DOC.md, the text between the roofline markers there is replaced.
"""
import collections
import datetime
import os
import sys

BEGIN, END = "<!-- roofline:begin -->", "<!-- roofline:end -->"


def parse(path):
    phase, load, totals, kernels = None, {}, {}, []
    reps = {"vit": [], "m3": []}  # per measured run: key -> [calls, ms]
    order = {"vit": [], "m3": []}
    alone = []  # dicts: part, tag, label, flops, bytes, impl, key, ms
    cur = None
    copy_gbs = 0.0
    threads = 0
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("onednn_verbose,exec,"):
            f = line.split(",")
            key, ms = ",".join(f[2:-1]), float(f[-1])
            if phase in ("vit_insitu", "m3_insitu"):
                part = phase[:-7]
                if key not in order[part] and not any(key in r for r in reps[part]):
                    order[part].append(key)
                e = reps[part][-1].setdefault(key, [0, 0.0])
                e[0] += 1
                e[1] += ms
            elif cur is not None and cur["key"] is None:
                cur["key"] = key
            continue
        if not line.startswith("roofline "):
            continue
        w = line.split()
        if w[1] == "phase":
            phase = w[2]
            load.setdefault(phase, float(w[4]))
            if phase in ("vit_insitu", "m3_insitu"):
                reps[phase[:-7]].append({})
        elif w[1] == "threads":
            threads = int(w[2])
        elif w[1] == "total":
            totals[w[2]] = min(totals.get(w[2], 1e30), float(w[3]))
        elif w[1] in ("alone", "any"):
            cur = {"part": phase[:-6], "tag": w[1], "label": w[2], "flops": float(w[3]), "bytes": float(w[4]),
                   "impl": w[5], "key": None, "ms": None}
            alone.append(cur)
        elif w[1] in ("alone_ms", "any_ms"):
            cur["ms"] = float(w[3])
            cur["cpu_ms"] = float(w[4]) if len(w) > 4 else cur["ms"]
            cur = None
        elif w[1] == "kernel":
            kernels.append({"name": w[2], "flops": float(w[3]), "bytes": float(w[4]), "ms": float(w[5]),
                            "calls": int(w[6])})
        elif w[1] == "copy_gbs":
            copy_gbs = float(w[2])
    # per primitive: the run where its summed time was smallest
    insitu = {}
    for part, runs in reps.items():
        insitu[part] = {}
        for key in order[part]:
            got = [r[key] for r in runs if key in r]
            insitu[part][key] = min(got, key=lambda e: e[1])
    return phase, load, totals, kernels, insitu, order, alone, copy_gbs, threads


def fmt_ms(x):
    return "-" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def is_side(label):
    """A one-thread primitive run side by side (the weight gradient's chunks, the attention's blocks):
    bench_roofline.c labels every primitive made by nn_cache_add_one_thread "...@side"."""
    return label.endswith("@side")


def part_table(part, title, total_s, total_cpu, insitu, order, alone, peak, copy_gbs, load_in, load_alone, top,
               threads):
    rows = {}
    for a in alone:
        if a["part"] != part or a["tag"] != "alone" or a["key"] is None:
            continue
        r = rows.setdefault(a["key"], {"labels": [], "flops": a["flops"], "bytes": a["bytes"], "impl": a["impl"],
                                       "alone_ms": a["ms"], "alone_cpu": a["cpu_ms"], "any_ms": None,
                                       "any_impl": None, "alone_side": is_side(a["label"])})
        if r["alone_side"] and not is_side(a["label"]):
            # the same shape run by all threads: its alone time is the one comparable with the wall
            r["alone_ms"], r["alone_cpu"], r["alone_side"] = a["ms"], a["cpu_ms"], False
        r["labels"].append(a["label"])
    for a in alone:
        if a["part"] == part and a["tag"] == "any" and a["ms"] is not None:
            for r in rows.values():
                if a["label"] in r["labels"] and (r["any_ms"] is None or a["ms"] < r["any_ms"]):
                    r["any_ms"], r["any_impl"] = a["ms"], a["impl"]
    out = []
    lines = []
    sum_in = 0.0
    sum_alone = sum_alone_cpu = 0.0
    flop_total = 0.0
    for key in order[part]:
        calls, ms = insitu[part][key]
        r = rows.get(key)
        side = r is not None and any(is_side(l) for l in r["labels"])
        if side:
            # one-thread weight-gradient chunks or attention blocks run side by side, one per thread
            # (nn_linear.c, dw_add_side; nn_attention.c, side_blocks):
            # oneDNN's verbose times each call on its own, so their sum is ~threads x the wall time
            ms /= threads
        if r is None:
            sum_in += ms
            lines.append((ms, [key.split(",")[1], str(calls), "-", "-", fmt_ms(ms), "-", "-", "-", "-", "-", "-"]))
            continue
        sum_in += ms
        a_ms = r["alone_ms"] * calls
        sum_alone += a_ms
        sum_alone_cpu += r["alone_cpu"] * calls
        flop_total += r["flops"] * calls
        gflop = r["flops"] * calls / 1e9
        if r["flops"] > 0:
            perf_ours = f"{100 * r['flops'] * calls / (ms / 1e3) / 1e9 / peak:.0f} %"
            perf_alone = (f"{100 * r['flops'] / (r['alone_ms'] / 1e3) / 1e9 / peak:.0f} % "
                          f"({100 * r['flops'] / (max(r['alone_cpu'], 1e-6) / 1e3) / 1e9 / peak:.0f} %)")
        else:
            perf_ours = f"{r['bytes'] * calls / (ms / 1e3) / 1e9:.1f} GB/s"
            perf_alone = f"{r['bytes'] / (r['alone_ms'] / 1e3) / 1e9:.1f} GB/s"
        anyc = "-" if r["any_ms"] is None else f"{fmt_ms(r['any_ms'] * calls)} ({r['any_impl']})"
        lines.append((ms, ["/".join(sorted(set(r["labels"])))[:70] + (" (side by side)" if side else ""),
                           str(calls), f"{gflop:.2f}", f"{r['bytes'] / 1e6:.2f}", fmt_ms(ms) + (" *" if side else ""), f"{fmt_ms(a_ms)} ({fmt_ms(r['alone_cpu'] * calls)})",
                           f"{ms / a_ms:.2f}" if a_ms > 0 else "-",
                           anyc, r["impl"], perf_ours, perf_alone]))
    lines.sort(key=lambda t: -t[0])
    out.append(f"### {title}\n")
    out.append(f"Load average (1 min) at the start of the measured run: {load_in:.2f}; of the alone runs: "
               f"{load_alone:.2f} (on 2 cores). Measured total: {1e3 * total_s:.1f} ms; sum of the oneDNN "
               f"primitives inside it: {sum_in:.1f} ms ({100 * sum_in / 1e3 / total_s:.0f} %); the same primitives "
               f"alone: {sum_alone:.1f} ms; ours / alone (primitives) {sum_in / sum_alone if sum_alone else 0:.2f}x; "
               f"outside oneDNN (hand-written loops, gaps): {1e3 * total_s - sum_in:.1f} ms "
               f"({100 * (1 - sum_in / 1e3 / total_s):.0f} %). Matmul FLOPs: {flop_total / 1e9:.1f} GFLOP = "
               f"{100 * flop_total / total_s / 1e9 / peak:.0f} % of peak over the whole {part} time, "
               f"{100 * flop_total / (sum_alone / 1e3) / 1e9 / peak if sum_alone else 0:.0f} % over the alone time. "
               f"Process CPU time / threads (what the load took away counts less): the {part} "
               f"{1e3 * total_cpu:.1f} ms = {100 * flop_total / total_cpu / 1e9 / peak if total_cpu else 0:.0f} % of peak; "
               f"the primitives alone {sum_alone_cpu:.1f} ms = "
               f"{100 * flop_total / (sum_alone_cpu / 1e3) / 1e9 / peak if sum_alone_cpu else 0:.0f} % of peak.\n")
    if any(is_side(l) for r in rows.values() for l in r["labels"]):
        out.append(f"Rows marked \"side by side\": the weight gradient's 1024-row chunks and the attention's "
                   f"blocks of samples, run one per thread with one-thread copies of their primitives (and the "
                   f"all-thread one for a remainder); ours ms * = their verbose exec times summed / {threads} "
                   f"threads (the wall time of the concurrent calls), alone = the all-thread primitive of the "
                   f"same shape.\n")
    out.append("| primitive (shape) | calls | GFLOP | MB per call | ours ms | alone ms (CPU/thread) | ours/alone | `any` alone ms (impl) | impl | ours: % peak or GB/s | alone: % peak (CPU/thread) or GB/s |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    shown = lines[:top]
    for _, c in shown:
        out.append("| " + " | ".join(c) + " |")
    rest = lines[top:]
    if rest:
        out.append(f"| ({len(rest)} more, each below {fmt_ms(rest[0][0])} ms) | | | | {fmt_ms(sum(t[0] for t in rest))} | | | | | | |")
    out.append("")
    return out


def main():
    raw, ghz, threads, prec = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    doc = sys.argv[5] if len(sys.argv) > 5 else None
    _, load, totals, kernels, insitu, order, alone, copy_gbs, thr = parse(raw)
    threads = thr or threads
    m32, m16 = float(os.environ.get("ROOFLINE_PEAK_FP32", 0)), float(os.environ.get("ROOFLINE_PEAK_BF16", 0))
    if m32 > 0:
        peak32 = m32
        peak_src = (f"measured fp32 peak {m32:.1f} GFLOP/s = {m32 / threads / ghz:.1f} FLOP/cycle/core "
                    f"(tests/bench/cpu_peak.c: independent FMA chains on {threads} threads), bf16 {m16:.1f} GFLOP/s")
    else:
        peak32 = ghz * 64 * threads
        peak_src = f"fp32 peak assumed {ghz:.3f} GHz x 64 FLOP/cycle/core x {threads} = {peak32:.1f} GFLOP/s (bf16 x2)"
    peak = (m16 if m16 > 0 else 2 * peak32) if prec == "bf16" else peak32
    now = datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")
    out = [BEGIN, "",
           f"Generated by `BENCH=roofline make bench` ({now}); {threads} threads; clock "
           f"{ghz:.3f} GHz ({os.environ.get('ROOFLINE_CLOCK_SOURCE', 'tests/bench/cpu_freq.c')}); {peak_src}; copy bandwidth measured {copy_gbs:.1f} GB/s (memcpy of 256 MiB, "
           f"read + write counted). The machine is shared with other work: absolute times are noisy (see the "
           f"load averages); the ratios within one run are what to compare. % peak = matmul FLOPs / time / peak; "
           f"for memory-bound primitives GB/s = bytes of all arguments / time.", ""]
    if "vit_forward" in totals:
        out += part_table("vit", f"ViT-B/16 forward ({prec}, random:base), one batch", totals["vit_forward"],
                          totals.get("vit_forward_cpu", 0),
                          insitu, order, alone, peak, copy_gbs, load.get("vit_insitu", -1), load.get("vit_alone", -1), 40,
                          threads)
    if "m3_step" in totals:
        out += part_table("m3", "3D training step (spec configuration), forward + backward + AdamW",
                          totals["m3_step"], totals.get("m3_step_cpu", 0), insitu, order, alone, peak32, copy_gbs, load.get("m3_insitu", -1),
                          load.get("m3_alone", -1), 40, threads)
    if kernels:
        step_ms = 1e3 * totals.get("m3_step", 0)
        out.append(f"### Hand-written kernels (alone, best of 3-5; load {load.get('kernels', -1):.2f})\n")
        out.append("| kernel | GFLOP | MB | ms | share of the measured 3D step | GFLOP/s | % fp32 peak |")
        out.append("|---|---|---|---|---|---|---|")
        for k in kernels:
            share = f"{100 * k['ms'] * k['calls'] / step_ms:.2f} %" if step_ms and not k["name"].startswith("project") else "(extract)"
            gf = k["flops"] / (k["ms"] / 1e3) / 1e9 if k["ms"] > 0 else 0
            out.append(f"| {k['name']} | {k['flops'] / 1e9:.3f} | {k['bytes'] / 1e6:.1f} | {fmt_ms(k['ms'])} | {share} | "
                       f"{gf:.1f} | {100 * gf / peak32:.1f} % |")
        out.append("")
    out.append(END)
    text = "\n".join(out) + "\n"
    print(text)
    if doc:
        try:
            cur = open(doc).read()
        except FileNotFoundError:
            cur = ""
        if BEGIN in cur and END in cur:
            new = cur[:cur.index(BEGIN)] + text.rstrip("\n") + cur[cur.index(END) + len(END):]
        else:
            new = cur + ("\n" if cur else "") + text
        open(doc, "w").write(new)


if __name__ == "__main__":
    main()
