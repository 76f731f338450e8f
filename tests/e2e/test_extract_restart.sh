# test_extract_restart.sh -- restart: an extraction of a few hundred tiny samples is SIGKILLed
# mid-run; re-running the same command (here on another grid, -np 2 with 2 stages) resumes, says
# how many samples it skipped, and the final file equals an uninterrupted run. Also: a complete
# file is not redone, another configuration is refused, --force replaces.
. "$(dirname "$0")/../lib.sh"
export OMP_NUM_THREADS=1
VIT=${I2PMAE_TEST_VIT:-random:tiny}
N=${I2PMAE_TEST_KILL_SAMPLES:-300}
"$I2PMAE" synth --samples $N --points 128 --seed 5 -o "$T/d.h5" > /dev/null 2>&1 || fail synth "could not make test data"
X="extract --input $T/d.h5 --vit $VIT --batch 2 --flush 4"

check uninterrupted_run "$I2PMAE" $X -o "$T/ref.h5"

# start, wait until some flushes are on disk (progress past 10%), then SIGKILL
I2PMAE_PROGRESS_S=0.1 "$I2PMAE" $X -o "$T/k.h5" > "$T/kill.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 600 ]; do
  pct=$(sed -n 's/.*samples (\([0-9]*\)\..*/\1/p' "$T/kill.log" | tail -1)
  [ -n "$pct" ] && [ "$pct" -ge 10 ] && break
  kill -0 $pid 2> /dev/null || break
  sleep 0.05; i=$((i + 1))
done
kill -9 $pid 2> /dev/null
wait $pid 2> /dev/null
if [ -e "$T/k.h5.partial" ] && [ ! -e "$T/k.h5" ]; then pass killed_mid_run_left_partial_only
else fail killed_mid_run_left_partial_only "partial: $(ls "$T" | tr '\n' ' ') (log: $(tail -2 "$T/kill.log" | tr '\n' ' '))"; fi

mpi 2 -x OMP_NUM_THREADS "$I2PMAE" $X --stages 2 -o "$T/k.h5" > "$T/resume.log" 2>&1
rc=$?
skipped=$(sed -n 's/.*: \([0-9]*\) of [0-9]* samples already done, skipped.*/\1/p' "$T/resume.log")
if [ "$rc" = 0 ] && [ -n "$skipped" ] && [ "$skipped" -gt 0 ] && [ "$skipped" -lt $N ]; then pass "resume_skipped_${skipped}_of_$N"
else fail resume_skips_done_samples "rc $rc, skipped '$skipped': $(tail -3 "$T/resume.log" | tr '\n' ' ')"; fi
out=""
for d in patch cls saliency pixel point_saliency label done; do out="$out$(h5diff "$T/ref.h5" "$T/k.h5" /$d /$d 2>&1)"; done
if [ -z "$out" ] && [ -f "$T/k.h5" ] && [ ! -e "$T/k.h5.partial" ]; then pass resumed_equals_uninterrupted
else fail resumed_equals_uninterrupted "$(echo "$out" | head -c 300)"; fi

check complete_file_not_redone sh -c "'$I2PMAE' $X -o '$T/k.h5' 2>&1 | grep -q 'nothing to do'"
expect_error other_config_refused "another configuration" "$I2PMAE" $X --views 2 -o "$T/k.h5"
check force_replaces "$I2PMAE" $X --views 2 --force -o "$T/k.h5"
check force_replaced_views $PY -c "import h5py; assert h5py.File('$T/k.h5','r').attrs['views'] == 2"

# a partial of another configuration is refused too
I2PMAE_PROGRESS_S=0.1 "$I2PMAE" $X -o "$T/p.h5" > "$T/kill2.log" 2>&1 &
pid=$!
i=0
while [ $i -lt 600 ] && ! grep -q "samples (" "$T/kill2.log"; do sleep 0.05; i=$((i + 1)); done
kill -9 $pid 2> /dev/null; wait $pid 2> /dev/null
if [ -e "$T/p.h5.partial" ]; then
  expect_error partial_other_config_refused "another configuration" "$I2PMAE" $X --fp32 -o "$T/p.h5"
else
  fail partial_other_config_refused "the run finished before it could be killed"
fi
