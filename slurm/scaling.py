#!/usr/bin/python3
"""scaling.py -- strong- and weak-scaling study of an i2pmae command over rank and stage counts.

    slurm/scaling.py --config jobs/scaling-extract.ini [--launcher srun|mpirun] [--bin ./i2pmae]
                     [--out DIR] [--ranks "1 2 4"] [--stages "1 2"] [--dry-run]

Reads the [scaling] section of the .ini (keys below); the same file is passed to the command as
--config, so its [extract] / [pretrain] / [synth] sections configure the runs themselves. For each
mode (strong: fixed total samples; weak: fixed samples per rank), each rank count R, each
stage count S dividing R, and each thread count T, it runs the command on R ranks x T threads,
takes the final JSON line of its output and appends one row to the CSV:

    study, command, mode, ranks, stages, threads, samples, seconds, samples_per_s, speedup,
    efficiency, compute_s, comm_s, idle_s, io_s, launcher, host, job

speedup = samples_per_s / samples_per_s of the study's first (fewest ranks) run of that mode;
efficiency = speedup / (R / R_first): 1.0 is perfect for strong and weak scaling alike. The
compute/comm/idle/io seconds are the mean over ranks of the command's per-rank split. Then it
draws the plots (slurm/scaling_plot.py). Used by slurm/scaling.sbatch; runs outside Slurm too
(launcher mpirun).

[scaling] keys: command (extract|pretrain), modes (strong weak), ranks (1 2), stages (1),
threads (1), samples (strong: total), samples_per_rank (weak: samples = this x ranks), points
(1024), out (scaling-out), timeout_s (900). pretrain (data parallel, and pipeline stages with
stages > 1): samples is its dataset, steps (10) optimiser steps per run of a global batch of
batch (16; strong) or batch_per_rank (8; weak) x ranks, vit (random:tiny) makes its features.
"""
import argparse
import configparser
import csv
import datetime
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile

CSV_FIELDS = ["study", "command", "mode", "ranks", "stages", "threads", "samples", "seconds",
              "samples_per_s", "speedup", "efficiency", "compute_s", "comm_s", "idle_s", "io_s",
              "launcher", "host", "job"]
SPLIT = ["compute", "comm", "idle", "io"]


def die(msg):
    print("scaling: error: " + msg, file=sys.stderr)
    sys.exit(2)


def int_list(text, what):
    try:
        vals = [int(v) for v in text.replace(",", " ").split()]
    except ValueError:
        die("%s: '%s' is not a list of integers" % (what, text))
    if not vals or min(vals) < 1:
        die("%s: '%s' must list positive integers" % (what, text))
    return vals


def read_config(path):
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), interpolation=None)
    try:
        if not cp.read(path):
            die("%s: cannot read the config file" % path)
    except configparser.Error as e:
        die("%s: %s" % (path, str(e).splitlines()[0]))
    if not cp.has_section("scaling"):
        die("%s: no [scaling] section" % path)
    s = cp["scaling"]
    known = {"command", "modes", "ranks", "stages", "threads", "samples", "samples_per_rank",
             "points", "out", "timeout_s", "vit", "steps", "batch", "batch_per_rank"}
    for k in s:
        if k not in known:
            die("%s: [scaling]: unknown key '%s' (known: %s)" % (path, k, ", ".join(sorted(known))))
    cfg = {
        "command": s.get("command", "extract"),
        "modes": s.get("modes", "strong weak").split(),
        "ranks": int_list(s.get("ranks", "1 2"), "ranks"),
        "stages": int_list(s.get("stages", "1"), "stages"),
        "threads": int_list(s.get("threads", "1"), "threads"),
        "samples": int(s.get("samples", "32")),
        "samples_per_rank": int(s.get("samples_per_rank", "16")),
        "points": int(s.get("points", "1024")),
        "out": s.get("out", "scaling-out"),
        "timeout_s": int(s.get("timeout_s", "900")),
        "vit": s.get("vit", "random:tiny"),
        "steps": int(s.get("steps", "10")),
        "batch": int(s.get("batch", "16")),
        "batch_per_rank": int(s.get("batch_per_rank", "8")),
    }
    if cfg["command"] not in ("extract", "pretrain"):
        die("%s: command = %s: use extract or pretrain" % (path, cfg["command"]))
    for m in cfg["modes"]:
        if m not in ("strong", "weak"):
            die("%s: modes: '%s' is neither strong nor weak" % (path, m))
    return cfg


def launch_cmd(launcher, np, threads, argv):
    if launcher == "srun":
        return ["srun", "--mpi=pmix", "--ntasks=%d" % np, "--cpus-per-task=%d" % threads,
                "--kill-on-bad-exit=1"] + argv
    return ["mpirun", "-np", str(np), "--bind-to", "none", "-x", "OMP_NUM_THREADS"] + \
        shlex.split(os.environ.get("I2PMAE_MPIRUN_ARGS", "")) + argv


def run(cmd, env, timeout_s, log):
    """Runs cmd; appends its output to log; returns (status, stdout text)."""
    log.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n")
    log.flush()
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout_s, universal_newlines=True)
    except subprocess.TimeoutExpired as e:
        out = e.output.decode() if isinstance(e.output, bytes) else (e.output or "")
        log.write(out + "\n[timed out after %d s]\n" % timeout_s)
        return 124, out
    log.write(p.stdout)
    log.flush()
    return p.returncode, p.stdout


def summary_line(text):
    """The command's final JSON summary (the last line that parses as a JSON object)."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


# Names of per-rank seconds in the commands' JSON lines, by kind: extract's per_rank objects
# ("compute_s", "comm_s", "idle_s", "io_s") and pretrain's totals ("seconds_compute",
# "seconds_allreduce", "seconds_data", "seconds_checkpoint").
KIND_OF = {"compute": "compute", "comm": "comm", "communication": "comm", "allreduce": "comm",
           "idle": "idle", "wait": "idle", "pipe_wait": "idle", "io": "io", "data": "io", "checkpoint": "io"}


def kind_of(name):
    n = name.lower()
    if n.endswith("_share"):
        return None
    if n.startswith("seconds_"):
        n = n[len("seconds_"):]
    elif n.endswith("_s"):
        n = n[:-2]
    else:
        return None
    return KIND_OF.get(n)


def rank_split(obj):
    """Seconds by kind of one rank's object (several names of one kind add up)."""
    out = {k: None for k in SPLIT}
    for name, v in obj.items():
        k = kind_of(name)
        if k and isinstance(v, (int, float)):
            out[k] = (out[k] or 0.0) + float(v)
    return out


def split_seconds(summary):
    """Mean over ranks of the compute/comm/idle/io seconds: from the summary's "per_rank" list of
    objects when it has one, else from its own top-level keys. nan where a kind is not reported."""
    per_rank = summary.get("per_rank")
    if isinstance(per_rank, list) and per_rank and all(isinstance(r, dict) for r in per_rank):
        ranks = [rank_split(r) for r in per_rank]
    else:
        ranks = [rank_split(summary)]
    out = {}
    for k in SPLIT:
        vals = [r[k] for r in ranks if r[k] is not None]
        out[k] = sum(vals) / len(vals) if vals else float("nan")
    return out


def number(summary, *names):
    for n in names:
        v = summary.get(n)
        if isinstance(v, (int, float)):
            return float(v)
    return float("nan")


def ensure_dataset(args, cfg, samples, env, log):
    path = os.path.join(cfg["out"], "data-%d-p%d.h5" % (samples, cfg["points"]))
    if not os.path.exists(path):
        rc, _ = run([args.bin, "synth", "--samples", str(samples), "--points", str(cfg["points"]),
                     "--seed", "1", "-o", path], env, cfg["timeout_s"], log)
        if rc != 0:
            die("synth of %d samples failed (see %s)" % (samples, log.name))
    return path


def ensure_features(args, cfg, data, samples, env, log):
    """pretrain needs the features of its dataset: extracted once per dataset (1 rank)."""
    path = os.path.join(cfg["out"], "features-%d-p%d.h5" % (samples, cfg["points"]))
    if not os.path.exists(path):
        rc, _ = run(launch_cmd(args.launcher, 1, 1, [args.bin, "extract", "--input", data,
                                                     "--vit", cfg["vit"], "-o", path]),
                    env, cfg["timeout_s"], log)
        if rc != 0:
            die("extract for pretrain's features failed (see %s)" % log.name)
    return path


def command_argv(args, cfg, data, features, out, stages, batch):
    if cfg["command"] == "extract":
        return [args.bin, "extract", "--config", args.config, "--input", data, "-o", out,
                "--stages", str(stages), "--force"]
    return [args.bin, "pretrain", "--config", args.config, "--data", data, "--features", features,
            "-o", out, "--steps", str(cfg["steps"]), "--batch", str(batch), "--stages", str(stages)]


def study_plan(cfg):
    """The runs of a study, in order: (mode, ranks, stages, threads, samples, batch, tag).
    extract: samples = the dataset (strong: `samples`; weak: `samples_per_rank` x ranks).
    pretrain (ranks / stages data replicas): the dataset has `samples`; each run takes `steps`
    optimiser steps of a global batch (strong: `batch`; weak: `batch_per_rank` x ranks)."""
    plan = []
    pretrain = cfg["command"] == "pretrain"
    for mode in cfg["modes"]:
        for ranks in sorted(cfg["ranks"]):
            for stages in sorted(cfg["stages"]):
                if ranks % stages:
                    continue
                for threads in sorted(cfg["threads"]):
                    if pretrain:
                        samples = cfg["samples"]
                        batch = cfg["batch"] if mode == "strong" else cfg["batch_per_rank"] * ranks
                    else:
                        samples = cfg["samples"] if mode == "strong" else cfg["samples_per_rank"] * ranks
                        batch = None
                    tag = "%s-%s-r%d-s%d-t%d" % (cfg["command"], mode, ranks, stages, threads)
                    plan.append((mode, ranks, stages, threads, samples, batch, tag))
    return plan


def dry_run(cfg):
    for mode, ranks, stages, threads, samples, batch, tag in study_plan(cfg):
        print("scaling: would run %s (%d samples%s)" % (
            tag, samples, "" if batch is None else ", %d steps of batch %d" % (cfg["steps"], batch)))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="jobs/scaling-*.ini")
    ap.add_argument("--launcher", choices=["srun", "mpirun"],
                    default="srun" if os.environ.get("SLURM_JOB_ID") else "mpirun")
    ap.add_argument("--bin", default=os.environ.get("I2PMAE", "./i2pmae"))
    ap.add_argument("--out", help="output directory (overrides [scaling] out)")
    ap.add_argument("--ranks", help="rank counts (overrides [scaling] ranks)")
    ap.add_argument("--stages", help="stage counts (overrides [scaling] stages)")
    ap.add_argument("--dry-run", action="store_true", help="print the runs, run nothing")
    args = ap.parse_args()
    cfg = read_config(args.config)
    if args.out:
        cfg["out"] = args.out
    if args.ranks:
        cfg["ranks"] = int_list(args.ranks, "--ranks")
    if args.stages:
        cfg["stages"] = int_list(args.stages, "--stages")
    if args.dry_run:
        return dry_run(cfg)
    if not os.access(args.bin, os.X_OK):
        die("%s: not an executable (build with make all, or pass --bin)" % args.bin)
    os.makedirs(cfg["out"], exist_ok=True)
    if os.geteuid() == 0:  # Open MPI's mpirun refuses root unless told (a root-run test cluster)
        os.environ.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    # mpirun: a session directory of our own (see slurm/launch.sh: concurrent mpiruns race on /tmp).
    session_dir = tempfile.mkdtemp(prefix="i2pmae-ompi.")
    os.environ["OMPI_MCA_orte_tmpdir_base"] = session_dir
    try:
        return study_runs(args, cfg)
    finally:
        shutil.rmtree(session_dir, ignore_errors=True)


def study_runs(args, cfg):
    csv_path = os.path.join(cfg["out"], "%s.csv" % cfg["command"])
    log = open(os.path.join(cfg["out"], "%s.log" % cfg["command"]), "a")
    study = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    host = socket.gethostname().split(".")[0]
    job = os.environ.get("SLURM_JOB_ID", "")
    failures = 0

    base = {}  # mode -> (samples_per_s, ranks) of the mode's first run
    for mode, ranks, stages, threads, samples, batch, tag in study_plan(cfg):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        data = ensure_dataset(args, cfg, samples, env, log)
        features = ensure_features(args, cfg, data, samples, env, log) \
            if cfg["command"] == "pretrain" else None
        out = os.path.join(cfg["out"], "run-" + tag + (".h5" if cfg["command"] == "extract" else ""))
        if os.path.isdir(out):
            shutil.rmtree(out)  # pretrain: a fresh run directory (no --resume)
        argv = launch_cmd(args.launcher, ranks, threads,
                          command_argv(args, cfg, data, features, out, stages, batch))
        rc, text = run(argv, env, cfg["timeout_s"], log)
        summary = summary_line(text)
        if rc != 0 or summary is None:
            print("scaling: %s failed (status %d%s); see %s" % (
                tag, rc, "" if summary else ", no JSON line", log.name), file=sys.stderr)
            failures += 1
            continue
        seconds = number(summary, "seconds", "wall_s", "elapsed_s")
        # Samples processed: extract's "samples"; pretrain's steps x batch (its "samples" is the dataset).
        n = number(summary, "samples") if batch is None else float(cfg["steps"] * batch)
        n = samples if n != n else n
        rate = number(summary, "samples_per_s")
        if rate != rate and seconds > 0:
            rate = n / seconds
        if mode not in base:
            base[mode] = (rate, ranks)
        speedup = rate / base[mode][0]
        eff = speedup / (ranks / base[mode][1])
        split = split_seconds(summary)
        row = [study, cfg["command"], mode, ranks, stages, threads, int(n), "%.4f" % seconds,
               "%.4f" % rate, "%.4f" % speedup, "%.4f" % eff] + \
              ["%.4f" % split[k] for k in SPLIT] + [args.launcher, host, job]
        new = not os.path.exists(csv_path)
        with open(csv_path, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(CSV_FIELDS)
            w.writerow(row)
        print("scaling: %-28s %5d samples %8.2f s %8.2f samples/s speed-up %5.2f efficiency %4.2f"
              % (tag, n, seconds, rate, speedup, eff), flush=True)
        if cfg["command"] == "extract" and os.path.exists(out):
            os.remove(out)
    here = os.path.dirname(os.path.abspath(__file__))
    rc = subprocess.call([sys.executable, os.path.join(here, "scaling_plot.py"), csv_path,
                          "--study", study, "--out", cfg["out"]])
    if failures:
        die("%d run(s) failed; see %s" % (failures, log.name))
    return rc


if __name__ == "__main__":
    sys.exit(main())
