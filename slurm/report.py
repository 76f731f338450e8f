#!/usr/bin/python3
"""slurm/report.py -- one table (mean +- std, min, max, n per setting) from many runs.

    slurm/report.py [--csv FILE] [--metric KEY]... RUNDIR...
    slurm/report.py out/fewshot/{5way-10shot,5way-20shot,10way-10shot,10way-20shot}/fold-{0..9}
    slurm/report.py out/seeds/finetune-modelnet40/seed-{0..4}

A run directory is what slurm/fewshot.sbatch and slurm/seeds.sbatch leave (docs/fewshot.md):
  summary.json   the command's JSON summary line (its last non-empty line is read), written only
                 when the command succeeded;
  exit_status    the command's exit status (written by the job after every attempt).
The setting of a run is the name of its parent directory (5way-10shot, finetune-modelnet40, ...);
settings keep the order in which they first appear on the command line.

Name the runs you expect (shell brace expansion names directories that do not exist yet): a run
without summary.json is listed by name as missing (no directory, or not finished: running,
cancelled or killed) or failed (exit status != 0), and the exit status is 1 -- the table then
averages only the runs that are there, and says so (n of expected). A summary that is not one
complete JSON object (truncated), lacks a metric, or holds a metric that is not a finite number is an
error (exit status 2, no table).

Metrics (--metric, repeatable; default by the summaries' command): finetune: test_acc_best,
test_acc_last; svm: accuracy. They are fractions and are printed in percent (x100).
std is the sample standard deviation (n - 1 in the denominator); n/a for a single run.
Output: the Markdown table on stdout, the same figures (full precision) in --csv (default
report.csv): setting,metric,n,expected,mean,std,min,max.
"""
import argparse
import json
import math
import os
import statistics
import sys

DEFAULT_METRICS = {
    "finetune": ["test_acc_best", "test_acc_last"],
    "svm": ["accuracy"],
}
SCALE = 100.0


class ReportError(Exception):
    pass


def read_summary(path):
    """The summary object of path's last non-empty line; ReportError when it is not one."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ReportError(f"{path}: not UTF-8 text ({e})")
    lines = [(i + 1, ln) for i, ln in enumerate(text.split("\n")) if ln.strip()]
    if not lines:
        raise ReportError(f"{path}: empty (no summary line)")
    no, line = lines[-1]
    if not text.endswith("\n"):
        raise ReportError(f"{path}: line {no}: truncated summary line (no end of line): {line[:80]!r}")
    try:
        obj = json.loads(line, parse_constant=lambda c: c)  # NaN / Infinity stay strings: rejected below
    except json.JSONDecodeError as e:
        raise ReportError(f"{path}: line {no}: not a complete JSON object (truncated?): {e.msg} "
                          f"at column {e.colno}: {line[:80]!r}")
    if not isinstance(obj, dict):
        raise ReportError(f"{path}: line {no}: not a JSON object: {line[:80]!r}")
    if not isinstance(obj.get("command"), str):
        raise ReportError(f"{path}: line {no}: no \"command\" field: not an i2pmae summary line")
    return obj


def metric_value(obj, key, path):
    if key not in obj:
        raise ReportError(f"{path}: metric \"{key}\" missing from the summary line "
                          f"(command {obj['command']})")
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ReportError(f"{path}: metric \"{key}\" is {json.dumps(v)}, not a finite number")
    return float(v)


def run_status(rundir):
    """(summary object, None) for a finished run, else (None, why it is missing or failed)."""
    if not os.path.isdir(rundir):
        return None, "missing: no run directory"
    summary = os.path.join(rundir, "summary.json")
    status_file = os.path.join(rundir, "exit_status")
    status = None
    if os.path.exists(status_file):
        with open(status_file) as f:
            status = f.read().strip()
    if os.path.exists(summary):
        return read_summary(summary), None
    if status is None:
        return None, "missing: not finished (no summary.json, no exit_status: running, cancelled or killed)"
    if status != "0":
        why = f"failed: exit status {status}"
        if status.isdigit() and int(status) > 128:
            why += f" (killed by signal {int(status) - 128}: cancelled, preempted or out of time?)"
        return None, f"{why}; submit the task again (see {rundir})"
    return None, "failed: exit status 0 but no summary.json"


def fmt(x, digits=2):
    return "n/a" if x is None else f"{x:.{digits}f}"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rundirs", nargs="+", metavar="RUNDIR")
    ap.add_argument("--csv", default="report.csv", help="CSV output (default report.csv)")
    ap.add_argument("--metric", action="append", default=None,
                    help="summary key to report (repeatable; default by command)")
    a = ap.parse_args(argv)

    settings = {}  # name -> {"runs": [(rundir, obj)], "problems": [(rundir, why)], "command": str}
    for rd in a.rundirs:
        rd = rd.rstrip("/") or "/"
        name = os.path.basename(os.path.dirname(os.path.abspath(rd))) or "/"
        s = settings.setdefault(name, {"runs": [], "problems": [], "command": None})
        obj, why = run_status(rd)
        if obj is None:
            s["problems"].append((rd, why))
            continue
        if s["command"] is None:
            s["command"] = obj["command"]
        elif s["command"] != obj["command"]:
            raise ReportError(f"{rd}/summary.json: command {obj['command']}, but the other runs of "
                              f"setting {name} are {s['command']}")
        s["runs"].append((rd, obj))

    rows = []  # (setting, metric, n, expected, mean, std, min, max)
    metrics_seen = []
    # A setting without a finished run takes the metrics of the others (its n is 0).
    known = next((s["command"] for s in settings.values() if s["command"]), None)
    for name, s in settings.items():
        expected = len(s["runs"]) + len(s["problems"])
        command = s["command"] or known
        keys = a.metric or ([] if command is None else DEFAULT_METRICS.get(command))
        if keys is None:
            raise ReportError(f"setting {name}: no default metric for command {command}; "
                              f"name one with --metric")
        for k in keys:
            if k not in metrics_seen:
                metrics_seen.append(k)
            vals = [metric_value(obj, k, os.path.join(rd, "summary.json")) * SCALE for rd, obj in s["runs"]]
            n = len(vals)
            rows.append((name, k, n, expected,
                         statistics.fmean(vals) if n else None,
                         statistics.stdev(vals) if n > 1 else None,
                         min(vals) if n else None, max(vals) if n else None))

    # Markdown: one line per setting, a group of columns per metric.
    head = ["setting", "n"]
    for k in metrics_seen:
        head += [f"{k} (%) mean ± std", "min", "max"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in settings:
        mine = {r[1]: r for r in rows if r[0] == name}
        s = settings[name]
        n, expected = len(s["runs"]), len(s["runs"]) + len(s["problems"])
        cells = [name, f"{n}" if n == expected else f"{n} of {expected}"]
        for k in metrics_seen:
            r = mine.get(k)
            if r is None:
                cells += ["", "", ""]
                continue
            cells += [f"{fmt(r[4])} ± {fmt(r[5])}", fmt(r[6]), fmt(r[7])]
        out.append("| " + " | ".join(cells) + " |")
    problems = [(rd, why) for s in settings.values() for rd, why in s["problems"]]
    print("\n".join(out))
    if problems:
        print(f"\n{len(problems)} of {len(a.rundirs)} runs missing or failed (not in the figures above):")
        for rd, why in problems:
            print(f"- {rd}: {why}")

    tmp = a.csv + ".partial"
    with open(tmp, "w") as f:
        f.write("setting,metric,n,expected,mean,std,min,max\n")
        for r in rows:
            f.write(",".join([r[0], r[1], str(r[2]), str(r[3])] +
                             ["" if x is None else repr(x) for x in r[4:]]) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, a.csv)
    print(f"\nCSV: {a.csv}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except ReportError as e:
        print(f"report: error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        print(f"report: error: {e}", file=sys.stderr)
        sys.exit(2)
