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

# Missing and failed runs: named, exit 1, n says "of".
mkdir -p "$R/10way-10shot/fold-2" "$R/10way-10shot/fold-3"; echo 1 > "$R/10way-10shot/fold-3/exit_status"
$REPORT --csv "$T/rep2.csv" $ALL "$R/10way-10shot/fold-2" "$R/10way-10shot/fold-3" "$R/10way-10shot/fold-4" \
  > "$T/rep2.md" 2>&1
rc=$?
if [ $rc = 1 ] && grep -q "^- $R/10way-10shot/fold-2: missing: not finished" "$T/rep2.md" &&
   grep -q "^- $R/10way-10shot/fold-3: failed: exit status 1" "$T/rep2.md" &&
   grep -q "^- $R/10way-10shot/fold-4: missing: no run directory" "$T/rep2.md" &&
   grep -q '^3 of 8 runs missing or failed' "$T/rep2.md" && grep -q '^| 10way-10shot | 2 of 5 |' "$T/rep2.md" &&
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
