# test_fewshot.sh -- few-shot splits, the report over many runs and the few-shot job array.
#   split:  properties checked with h5py (tests/ref/check_fewshot_split.py: exact counts, disjoint,
#           labels and clouds from the input, names); the same bytes on 1 and 2 ranks and from a
#           renamed copy of the input; another fold differs (the comparison can fail); a larger
#           --query keeps the training clouds; a short class is an error naming it; a split file
#           read whole is an error that names its groups, FILE:/train reads a group
#   report: figures equal mean / sample std / min / max computed here with python's statistics;
#           missing and failed runs listed by name (exit 1); truncated, non-numeric, NaN or absent
#           metrics are errors (exit 2, no table)
#   slurm:  slurm/fewshot.sbatch as a real job array on the local Slurm (2 settings x 2 folds): the
#           report equals the one of the same runs made directly; a task cancelled mid-run is listed
#           as missing, resubmitted alone it completes the table (skipped without Slurm or finetune)
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1
REPORT="$PY $ROOT/slurm/report.py"

# ---- fewshot-split ----------------------------------------------------------------------------
check synth "$I2PMAE" synth --samples 240 --points 64 --seed 5 -o "$T/d.h5"   # 12 classes x 20
SPLIT="--way 5 --shot 4 --query 6 --fold 1 --seed 3"
check split_1rank "$I2PMAE" fewshot-split --data "$T/d.h5" $SPLIT -o "$T/s1.h5"
check split_2ranks mpi 2 "$I2PMAE" fewshot-split --data "$T/d.h5" $SPLIT -o "$T/s2.h5"
if cmp -s "$T/s1.h5" "$T/s2.h5"; then pass split_same_bytes_1_2_ranks
else fail split_same_bytes_1_2_ranks "$(cmp "$T/s1.h5" "$T/s2.h5" 2>&1)"
fi
cp "$T/d.h5" "$T/renamed.h5"
"$I2PMAE" fewshot-split --data "$T/renamed.h5" $SPLIT -o "$T/s3.h5" > /dev/null 2>&1
if cmp -s "$T/s1.h5" "$T/s3.h5"; then pass split_same_bytes_renamed_input
else fail split_same_bytes_renamed_input "a copy of the input under another name gives another file"
fi
"$I2PMAE" fewshot-split --data "$T/d.h5" --way 5 --shot 4 --query 6 --fold 2 --seed 3 -o "$T/f2.h5" > /dev/null 2>&1
if [ -f "$T/f2.h5" ] && ! cmp -s "$T/s1.h5" "$T/f2.h5"; then pass split_other_fold_differs
else fail split_other_fold_differs "fold 2 gives the same file as fold 1 (or failed)"
fi
if have_h5py; then
  if $PY "$ROOT/tests/ref/check_fewshot_split.py" "$T/d.h5" "$T/s2.h5" 5 4 6 > "$T/props.out" 2>&1; then
    pass split_properties
  else
    fail split_properties "$(grep -v '^OK' "$T/props.out" | head -n 4 | tr '\n' ' ')"
  fi
  "$I2PMAE" fewshot-split --data "$T/d.h5" --way 5 --shot 4 --query 9 --fold 1 --seed 3 -o "$T/q9.h5" > /dev/null 2>&1
  if $PY - "$T/s1.h5" "$T/q9.h5" > "$T/q.out" 2>&1 <<'EOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
assert a.attrs["class_ids"] == b.attrs["class_ids"], "classes differ"
for k in ("points", "label", "index"):
    assert np.array_equal(a["train/" + k][:], b["train/" + k][:]), "train/" + k + " differs"
assert b["test/label"].shape == (45,), b["test/label"].shape
assert not set(b["test/index"][:]) & set(b["train/index"][:]), "train and test overlap"
EOF
  then pass split_query_keeps_train
  else fail split_query_keeps_train "$(tail -n 2 "$T/q.out" | tr '\n' ' ')"
  fi
  # One short class among enough: 'cube' (label 1) keeps 5 of its 20 clouds.
  $PY - "$T/d.h5" "$T/short.h5" <<'EOF'
import sys, h5py, numpy as np
with h5py.File(sys.argv[1], "r") as f:
    p, l, attrs = f["points"][:], f["label"][:], dict(f.attrs)
keep = np.ones(len(l), bool)
keep[np.flatnonzero(l == 1)[5:]] = False
with h5py.File(sys.argv[2], "w") as o:
    o["points"], o["label"] = p[keep], l[keep].astype(np.int32)
    for k, v in attrs.items():
        o.attrs[k] = v
EOF
  expect_error split_short_class "class 1 'cube' has 5 clouds, fewer than --shot 4 + --query 6 = 10" \
    mpirun --oversubscribe --bind-to none -np 2 "$I2PMAE" fewshot-split --data "$T/short.h5" $SPLIT -o "$T/short-split.h5"
  no_file split_short_class_no_output "$T/short-split.h5"
else
  for n in split_properties split_query_keeps_train split_short_class split_short_class_no_output; do
    skip "$n" "python3 h5py/numpy missing"
  done
fi
expect_error split_way_too_large "--way 13: must be between 1 and the 12 classes" \
  "$I2PMAE" fewshot-split --data "$T/d.h5" --way 13 --shot 1 --query 1 -o "$T/w13.h5"
expect_error split_read_whole "a few-shot split (groups /train and /test): name a group, .*s1.h5:/train" \
  "$I2PMAE" fewshot-split --data "$T/s1.h5" --way 2 --shot 1 --query 1 -o "$T/ss.h5"
if "$I2PMAE" fewshot-split --data "$T/s1.h5:/test" --way 2 --shot 2 --query 3 -o "$T/ss.h5" > "$T/ss.out" 2>&1 &&
   grep -q '"input_classes":5,"input_samples":30' "$T/ss.out"; then
  pass split_reads_group
else
  fail split_reads_group "$(tail -n 2 "$T/ss.out" | tr '\n' ' ')"
fi

# ---- report -----------------------------------------------------------------------------------
# run DIR BEST LAST: a finished fine-tuning run with those accuracies.
run() {
  mkdir -p "$1"
  printf '{"i2pmae":"0.1.0","command":"finetune","ranks":1,"test_acc_last":%s,"test_acc_best":%s,"best_epoch":3}\n' \
    "$3" "$2" > "$1/summary.json"
  echo 0 > "$1/exit_status"
}
R=$T/rep
run "$R/5way-10shot/fold-0" 0.96 0.94; run "$R/5way-10shot/fold-1" 0.99 0.99; run "$R/5way-10shot/fold-2" 0.93 0.9
run "$R/10way-10shot/fold-0" 0.905 0.9; run "$R/10way-10shot/fold-1" 0.875 0.86
ALL="$R/5way-10shot/fold-0 $R/5way-10shot/fold-1 $R/5way-10shot/fold-2 $R/10way-10shot/fold-0 $R/10way-10shot/fold-1"
$REPORT --csv "$T/rep.csv" $ALL > "$T/rep.md" 2> "$T/rep.err"
rc=$?
if [ $rc = 0 ] && $PY - "$T/rep.csv" > "$T/repchk.out" 2>&1 <<'EOF'
import csv, statistics, sys
want = {("5way-10shot", "test_acc_best"): [96, 99, 93], ("5way-10shot", "test_acc_last"): [94, 99, 90],
        ("10way-10shot", "test_acc_best"): [90.5, 87.5], ("10way-10shot", "test_acc_last"): [90, 86]}
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == len(want), f"{len(rows)} rows"
for r in rows:
    v = want[(r["setting"], r["metric"])]
    assert int(r["n"]) == len(v) == int(r["expected"]), r
    for k, x in (("mean", statistics.mean(v)), ("std", statistics.stdev(v)), ("min", min(v)), ("max", max(v))):
        assert abs(float(r[k]) - x) < 1e-9, f"{r['setting']} {r['metric']} {k}: {r[k]} vs {x}"
EOF
then
  pass report_figures
else
  fail report_figures "exit $rc: $(cat "$T/rep.err" "$T/repchk.out" 2>/dev/null | tail -n 3 | tr '\n' ' ')"
fi
if grep -q '^| 5way-10shot | 3 | 96.00 ± 3.00 | 93.00 | 99.00 | 94.33 ± 4.51 | 90.00 | 99.00 |$' "$T/rep.md" &&
   grep -q '^| 10way-10shot | 2 | 89.00 ± 2.12 | 87.50 | 90.50 | 88.00 ± 2.83 | 86.00 | 90.00 |$' "$T/rep.md"; then
  pass report_markdown
else
  fail report_markdown "$(tr '\n' ' ' < "$T/rep.md")"
fi

# Missing and failed runs: named, exit 1, n says "of"; a setting with no finished run still has its row.
mkdir -p "$R/10way-10shot/fold-2" "$R/10way-10shot/fold-3"; echo 1 > "$R/10way-10shot/fold-3/exit_status"
$REPORT --csv "$T/rep2.csv" $ALL "$R/10way-10shot/fold-2" "$R/10way-10shot/fold-3" "$R/10way-10shot/fold-4" \
  "$R/20way-1shot/fold-0" > "$T/rep2.md" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q "^- $R/10way-10shot/fold-2: missing: not finished" "$T/rep2.md" &&
   grep -q "^- $R/10way-10shot/fold-3: failed: exit status 1" "$T/rep2.md" &&
   grep -q "^- $R/10way-10shot/fold-4: missing: no run directory" "$T/rep2.md" &&
   grep -q '^4 of 9 runs missing or failed' "$T/rep2.md" && grep -q '^| 10way-10shot | 2 of 5 |' "$T/rep2.md" &&
   grep -q '^| 20way-1shot | 0 of 1 | n/a ± n/a |' "$T/rep2.md" && grep -q '^20way-1shot,test_acc_last,0,1,,,,$' "$T/rep2.csv" &&
   grep -q '^10way-10shot,test_acc_best,2,5,' "$T/rep2.csv"; then
  pass report_missing_failed_named
else
  fail report_missing_failed_named "exit $rc: $(tr '\n' ' ' < "$T/rep2.md")"
fi

# bad_summary NAME PATTERN CONTENT: a run whose summary.json holds CONTENT is an error matching PATTERN.
bad_summary() {
  mkdir -p "$R/bad/fold-0"
  printf '%s' "$3" > "$R/bad/fold-0/summary.json"
  $REPORT --csv "$T/bad.csv" "$R/5way-10shot/fold-0" "$R/bad/fold-0" > "$T/bad.out" 2> "$T/bad.err"
  rc=$?
  if [ $rc = 2 ] && grep -q "^report: error: $R/bad/fold-0/summary.json: .*$2" "$T/bad.err" && ! grep -q '^|' "$T/bad.out"; then
    pass "$1"
  else
    fail "$1" "exit $rc: $(cat "$T/bad.out" "$T/bad.err" | tail -n 3 | tr '\n' ' ')"
  fi
}
bad_summary report_truncated_line "truncated summary line" '{"i2pmae":"0.1.0","command":"finetune","test_acc_best":0.9'
bad_summary report_cut_json "not a complete JSON object" '{"i2pmae":"0.1.0","command":"finetune","test_acc_be
'
bad_summary report_non_numeric 'metric "test_acc_best" is "0.9x", not a finite number' \
  '{"i2pmae":"0.1.0","command":"finetune","test_acc_best":"0.9x","test_acc_last":0.8}
'
bad_summary report_nan 'metric "test_acc_last" is "NaN", not a finite number' \
  '{"i2pmae":"0.1.0","command":"finetune","test_acc_best":0.9,"test_acc_last":NaN}
'
bad_summary report_metric_absent 'metric "test_acc_last" missing' '{"i2pmae":"0.1.0","command":"finetune","test_acc_best":0.9}
'

# ---- the job array on the local Slurm -----------------------------------------------------------
SLURM_CHECKS="slurm_cluster_start slurm_array_runs slurm_report_equals_direct slurm_cancelled_task_named slurm_resubmitted_task_completes"
skip_slurm() { for n in $SLURM_CHECKS; do skip "$n" "$1"; done; exit 0; }
"$I2PMAE" finetune --help > /dev/null 2>&1 || skip_slurm "no finetune command in this build"
have_h5py || skip_slurm "python3 h5py/numpy missing (the toy data needs none, but the split checks above did)"
[ "$(id -u)" = 0 ] || skip_slurm "not root: slurmd must run as root"
for t in munged slurmctld slurmd sbatch scancel squeue; do
  command -v "$t" > /dev/null || [ -x "/usr/sbin/$t" ] || skip_slurm "'$t' not installed (slurm-wlm, munge; tests/deps.sh)"
done

# The toy: 2 settings x 2 folds of the tiny network, 2 epochs from scratch, on 12 classes x 8 clouds.
"$I2PMAE" synth --samples 96 --points 128 --seed 7 -o "$T/toy.h5" > /dev/null 2>&1 || skip_slurm "synth failed"
cat > "$T/toy.ini" <<INI
points = 128
groups = 32,16,8
k = 8,4,4
dims = 12,24,48
depths = 1,1,1
heads = 2
embed-hidden = 8,16,32
drop-path = 0
[fewshot]
settings = 2x3 3x3
folds = 2
query = 3
split-seed = 4
data = $T/toy.h5
out = $T/array
[finetune]
epochs = 2
warmup-epochs = 1
batch = 4
micro-batch = 4
lr = 0.002
log-every = 1
INI
RUNS="2way-3shot/fold-0 2way-3shot/fold-1 3way-3shot/fold-0 3way-3shot/fold-1"

CLUSTER=$ROOT/slurm/local-cluster.sh
export I2PMAE_SLURM_DIR=$T/slurm I2PMAE_SLURM_TIMEOUT=20 I2PMAE_HOME=$ROOT I2PMAE
chmod 0755 "$T"   # munged (user munge) must reach its socket below $T
export I2PMAE_SLURM_PORT=$(pick_port) || skip_slurm "no free TCP port pair"
trap 'timeout 120 "$CLUSTER" stop > /dev/null 2>&1; rm -rf "$T"' EXIT
trap 'exit 1' INT TERM HUP
if ! timeout 90 "$CLUSTER" start > "$T/start.out" 2>&1; then
  fail slurm_cluster_start "$(tail -n 4 "$T/start.out" | tr '\n' ' ')"
  for n in $SLURM_CHECKS; do [ "$n" = slurm_cluster_start ] || skip "$n" "the local cluster did not start"; done
  exit 0
fi
pass slurm_cluster_start
eval "$("$CLUSTER" env)"

# Task 3 (3-way, fold 1) waits before fine-tuning while $T/stall exists, so that it can be cancelled
# mid-run (its split written, fine-tuning started).
cat > "$T/i2pmae-stall" <<EOF
#!/bin/sh
if [ "\$1" = finetune ] && [ -e "$T/stall" ]; then
  case "\$*" in *3way-3shot/fold-1/*) sleep 300 ;; esac
fi
exec "$I2PMAE" "\$@"
EOF
chmod +x "$T/i2pmae-stall"
touch "$T/stall"
ARGS="--config $T/toy.ini --scratch"
job=$(sbatch --parsable --array=0-3 -n 1 -c 1 -o "$T/array-%a.out" --export=ALL,I2PMAE="$T/i2pmae-stall" \
      "$ROOT/slurm/fewshot.sbatch" $ARGS 2>&1)

# The same runs made directly, meanwhile.
for r in $RUNS; do
  s=${r%%/*}; way=${s%%way*}; shot=${s#*way-}; shot=${shot%shot}; fold=${r#*fold-}
  mkdir -p "$T/direct/$r"
  "$I2PMAE" fewshot-split --data "$T/toy.h5" --way "$way" --shot "$shot" --query 3 --fold "$fold" --seed 4 \
    -o "$T/direct/$r/split.h5" > /dev/null 2>&1 &&
  "$I2PMAE" finetune $ARGS --data "$T/direct/$r/split.h5" -o "$T/direct/$r" > "$T/direct/$r/summary.json" 2> "$T/direct.err" ||
    echo "direct run $r failed: $(tail -n 2 "$T/direct.err")" >> "$T/direct.fail"
done
(cd "$T/direct" && $REPORT --csv "$T/direct.csv" $RUNS > "$T/direct.md" 2> "$T/direct.err")
direct_rc=$?

# Wait for tasks 0-2 to finish and task 3 to stall (90 s at most), then cancel task 3.
n=0
for _ in $(seq 1 450); do
  n=0; for r in $RUNS; do [ -s "$T/array/$r/summary.json" ] && n=$((n + 1)); done
  [ $n -ge 3 ] && [ -f "$T/array/3way-3shot/fold-1/finetune.log" ] && break
  [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
  sleep 0.2
done
scancel "${job}_3" 2>/dev/null
for _ in $(seq 1 150); do [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break; sleep 0.2; done
if [ $n -ge 3 ]; then pass slurm_array_runs
else fail slurm_array_runs "job '$job': $n of 3 tasks finished: $(tail -n 3 "$T"/array-*.out 2>/dev/null | tr '\n' ' ')"
fi
(cd "$T/array" && $REPORT --csv "$T/cancelled.csv" $RUNS > "$T/cancelled.md" 2> "$T/cancelled.err")
rc=$?
# Cancelled mid-run: the job's shell may record the killed step's status (143) or be gone first.
if [ $rc = 1 ] && grep -q '^- 3way-3shot/fold-1: \(missing: not finished\|failed: exit status 143 (killed by signal 15\)' "$T/cancelled.md" &&
   grep -q '^| 3way-3shot | 1 of 2 |' "$T/cancelled.md"; then
  pass slurm_cancelled_task_named
else
  fail slurm_cancelled_task_named "report exit $rc: $(tr '\n' ' ' < "$T/cancelled.md")"
fi

# Resubmit task 3 alone (without the stall): it reuses its split and completes the table.
rm -f "$T/stall"
timeout 90 sbatch --wait --quiet --array=3 -n 1 -c 1 -o "$T/array-3b.out" "$ROOT/slurm/fewshot.sbatch" $ARGS \
  > "$T/resub.out" 2>&1
(cd "$T/array" && $REPORT --csv "$T/array.csv" $RUNS > "$T/array.md" 2> "$T/array.err")
rc=$?
if [ $rc = 0 ] && ! grep -q 'i2pmae-job: .* fewshot-split ' "$T/array-3b.out"; then
  pass slurm_resubmitted_task_completes
else
  fail slurm_resubmitted_task_completes "report exit $rc: $(cat "$T/resub.out" "$T/array.md" "$T/array-3b.out" 2>/dev/null | tail -n 4 | tr '\n' ' ')"
fi
if [ -f "$T/direct.fail" ] || [ $direct_rc != 0 ]; then
  fail slurm_report_equals_direct "direct runs: $(cat "$T/direct.fail" "$T/direct.md" 2>/dev/null | tail -n 3 | tr '\n' ' ')"
elif cmp -s "$T/direct.csv" "$T/array.csv" && cmp -s "$T/direct.md" "$T/array.md" &&
     [ "$(grep -c '^| [23]way-3shot | 2 |' "$T/array.md")" = 2 ]; then
  pass slurm_report_equals_direct
  sed 's/^/    /' "$T/array.md"
else
  fail slurm_report_equals_direct "$(diff "$T/direct.md" "$T/array.md" | head -n 6 | tr '\n' ' ')"
fi
