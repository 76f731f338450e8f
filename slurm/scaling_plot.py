#!/usr/bin/python3
"""scaling_plot.py -- PNG plots of a scaling study from the CSV that slurm/scaling.py appends to.

    slurm/scaling_plot.py CSV [--study ID] [--out DIR]

For each command and mode of the study (default: the newest study in the CSV) it draws with
gnuplot, into DIR (default: the CSV's directory):
    <command>-<mode>-speedup.png     speed-up vs ranks, one line per stage/thread count, and ideal
    <command>-<mode>-efficiency.png  parallel efficiency vs ranks
    <command>-<mode>-breakdown.png   share of compute / communication / idle / I/O per run
and writes <command>-<mode>.md, the study's table in Markdown (for notes and docs).
"""
import argparse
import csv
import os
import subprocess
import sys


def die(msg):
    print("scaling_plot: error: " + msg, file=sys.stderr)
    sys.exit(2)


def load(path, study):
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        die("%s: %s" % (path, e.strerror))
    if not rows:
        die("%s: no rows" % path)
    if study is None:
        study = max(r["study"] for r in rows)
    rows = [r for r in rows if r["study"] == study]
    if not rows:
        die("%s: no rows of study %s" % (path, study))
    return study, rows


def gnuplot(script):
    try:
        p = subprocess.run(["gnuplot"], input=script, universal_newlines=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except OSError:
        die("gnuplot not found (Debian package gnuplot-nox)")
    if p.returncode != 0:
        die("gnuplot failed: " + p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "gnuplot failed")


def series_key(r):
    return (int(r["stages"]), int(r["threads"]))


def write_series(rows, out, stem):
    """One .dat file per (stages, threads): ranks speedup efficiency. Returns [(file, title)]."""
    groups = {}
    for r in rows:
        groups.setdefault(series_key(r), []).append(r)
    files = []
    for (stages, threads), rs in sorted(groups.items()):
        name = os.path.join(out, "%s-s%d-t%d.dat" % (stem, stages, threads))
        with open(name, "w") as f:
            for r in sorted(rs, key=lambda r: int(r["ranks"])):
                f.write("%s %s %s\n" % (r["ranks"], r["speedup"], r["efficiency"]))
        files.append((name, "S=%d, %d thread%s" % (stages, threads, "" if threads == 1 else "s")))
    return files


def plot_mode(rows, out, command, mode):
    stem = "%s-%s" % (command, mode)
    ranks = sorted({int(r["ranks"]) for r in rows})
    r0 = ranks[0]
    files = write_series(rows, out, stem)
    what = "fixed total samples" if mode == "strong" else "fixed samples per rank"
    common = ('set terminal pngcairo size 800,520 font "sans,11"\n'
              'set grid\nset key left top\nset xlabel "MPI ranks"\n'
              'set xtics (%s)\nset xrange [%g:%g]\n' % (
                  ", ".join(str(r) for r in ranks), r0 * 0.9, ranks[-1] * 1.1))
    if len(ranks) > 2:
        common += "set logscale x 2\n"
    lines = ", ".join('"%s" using 1:2 with linespoints lw 2 pt 7 title "%s"' % f for f in files)
    gnuplot(common + 'set output "%s"\nset title "%s %s scaling: speed-up (%s)"\n'
            'set ylabel "speed-up (samples/s relative to %d rank%s)"\nset yrange [0:*]\n'
            'plot x/%d with lines dt 2 lc rgb "gray40" title "ideal", %s\n' % (
                os.path.join(out, stem + "-speedup.png"), command, mode, what, r0,
                "" if r0 == 1 else "s", r0, lines))
    lines = ", ".join('"%s" using 1:3 with linespoints lw 2 pt 7 title "%s"' % f for f in files)
    gnuplot(common + 'set output "%s"\nset title "%s %s scaling: parallel efficiency"\n'
            'set ylabel "efficiency"\nset yrange [0:1.2]\n'
            'plot 1 with lines dt 2 lc rgb "gray40" title "ideal", %s\n' % (
                os.path.join(out, stem + "-efficiency.png"), command, mode, lines))
    # Time breakdown: share of the mean per-rank seconds, one stacked bar per run.
    dat = os.path.join(out, stem + "-breakdown.dat")
    with open(dat, "w") as f:
        for r in sorted(rows, key=lambda r: (int(r["ranks"]), int(r["stages"]), int(r["threads"]))):
            parts = [float(r[k]) for k in ("compute_s", "comm_s", "idle_s", "io_s")]
            parts = [0.0 if p != p else p for p in parts]  # nan (not reported) -> 0
            total = sum(parts) or 1.0
            f.write('"R%s S%s T%s" %s\n' % (r["ranks"], r["stages"], r["threads"],
                                           " ".join("%.4f" % (100 * p / total) for p in parts)))
    gnuplot('set terminal pngcairo size 800,520 font "sans,11"\nset output "%s"\n'
            'set title "%s %s scaling: where the time goes (mean over ranks)"\n'
            'set style data histograms\nset style histogram rowstacked\nset style fill solid 0.8 border -1\n'
            'set boxwidth 0.6\nset ylabel "%% of rank time"\nset yrange [0:100]\nset key outside right\n'
            'set xlabel "R ranks, S stages, T threads"\nset grid ytics\n'
            'plot "%s" using 2:xtic(1) title "compute", "" using 3 title "communication", '
            '"" using 4 title "idle", "" using 5 title "I/O"\n' % (
                os.path.join(out, stem + "-breakdown.png"), command, mode, dat))
    with open(os.path.join(out, stem + ".md"), "w") as f:
        f.write("| ranks | stages | threads | samples | seconds | samples/s | speed-up | efficiency "
                "| compute s | comm s | idle s | I/O s |\n|" + " --- |" * 12 + "\n")
        for r in sorted(rows, key=lambda r: (int(r["ranks"]), int(r["stages"]), int(r["threads"]))):
            f.write("| %s |\n" % " | ".join(r[k] for k in (
                "ranks", "stages", "threads", "samples", "seconds", "samples_per_s", "speedup",
                "efficiency", "compute_s", "comm_s", "idle_s", "io_s")))
    return [stem + s for s in ("-speedup.png", "-efficiency.png", "-breakdown.png", ".md")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv")
    ap.add_argument("--study", help="study id (first CSV column); default: the newest")
    ap.add_argument("--out", help="directory for the PNGs (default: the CSV's directory)")
    args = ap.parse_args()
    out = args.out or os.path.dirname(os.path.abspath(args.csv))
    os.makedirs(out, exist_ok=True)
    study, rows = load(args.csv, args.study)
    made = []
    for command in sorted({r["command"] for r in rows}):
        for mode in sorted({r["mode"] for r in rows if r["command"] == command}):
            made += plot_mode([r for r in rows if r["command"] == command and r["mode"] == mode],
                              out, command, mode)
    print("scaling_plot: study %s: %s in %s" % (study, " ".join(made), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
