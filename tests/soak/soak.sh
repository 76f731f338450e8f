# tests/soak/soak.sh -- the kill soak (issue 18, docs/reliability.md "Kill at any moment"):
# extract, pretrain and finetune are each killed with SIGKILL (every process of the run at once:
# mpirun and its ranks) at a random moment SOAK_N times (default 20), from the start-up to just
# after the end of an uninterrupted run, and resumed each time; every resumed result must equal
# one uninterrupted run bit for bit:
#   extract   every dataset of the features file (h5diff; killed on a 2 x 1 or 1 x 2 grid,
#             resumed on 1 rank)
#   pretrain  loss.csv (step, epoch, losses, lr) and the final checkpoint's datasets (2 ranks)
#   finetune  metrics.csv and the datasets of the final checkpoint and best.h5 (2 ranks)
# The moments come from SOAK_SEED (default 1); every line names its seed and moment, so a failure
# can be run again. `make soak` runs this; tests/e2e/test_soak.sh runs 3 kills each in `make test`.
# Prints PASS/FAIL lines (tests/lib.sh) and ends with "N passed, N failed".
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/e2e/pretrain_lib.sh"
need_features_writer
npass=0; nfail=0
pass() { echo "PASS: $1"; npass=$((npass + 1)); }
fail() { echo "FAIL: $1: $2"; nfail=$((nfail + 1)); }
N=${SOAK_N:-20}
SEED=${SOAK_SEED:-1}
echo "kill soak: $N kills per command, seed $SEED"

# moment I MAX: the I-th random moment in [0, MAX) seconds (awk's generator seeded by SEED and I).
moment() { awk -v s="$SEED" -v i="$1" -v m="$2" 'BEGIN { srand(s * 7919 + i); printf "%.3f", rand() * m }'; }

# timed OUT CMD...: runs CMD (output in OUT) and prints its wall time in seconds.
timed() {
  out=$1; shift
  t0=$(date +%s.%N)
  "$@" > "$out" 2>&1 || { echo "uninterrupted run failed: $(tail -n 2 "$out" | tr '\n' ' ')" >&2; echo 0; return 1; }
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'
}

# kill_at SECONDS OUT CMD...: CMD in a session of its own (output in OUT), every process of that
# session killed with SIGKILL SECONDS after the start; prints "killed" or "finished" (before).
kill_at() {
  d=$1; out=$2; shift 2
  setsid "$@" > "$out" 2>&1 &
  p=$!
  sleep "$d"
  if kill -0 "$p" 2> /dev/null; then
    pkill -9 -s "$p"
    wait "$p" 2> /dev/null
    while pgrep -s "$p" > /dev/null; do sleep 0.05; done
    echo killed
  else
    wait "$p"
    echo finished
  fi
}

# same_datasets A B: every dataset of A equals B's (attributes may differ); prints what differs.
same_datasets() {
  sets=$(h5ls -r "$1" 2> /dev/null | awk '$2 == "Dataset" { print $1 }')
  [ -n "$sets" ] || { echo "no datasets in $1"; return 1; }
  [ -f "$2" ] || { echo "$2 missing"; return 1; }
  for d in $sets; do
    h5diff -q "$1" "$2" "$d" > /dev/null 2>&1 || { echo "$(basename "$2"):$d differs"; return 1; }
  done
}

# verdict NAME I D STATE WHY: one PASS/FAIL line for kill I at D seconds.
verdict() {
  if [ -z "$5" ]; then pass "$1_kill_$2"; echo "    (seed $SEED, at ${3}s: $4)"
  else fail "$1_kill_$2" "seed $SEED, kill at ${3}s ($4): $5"; fi
}

"$I2PMAE" synth --samples 24 --points 128 --seed 3 -o "$T/d.h5" > /dev/null 2>&1
make_features "$T/d.h5" "$T/f.h5" > /dev/null 2>&1 || { fail soak_setup "no features file"; exit 0; }

# ---- extract: 32 samples, a flush every 4 ----
"$I2PMAE" synth --samples 32 --points 128 --seed 7 -o "$T/ex_in.h5" > /dev/null 2>&1
EX="--input $T/ex_in.h5 --vit random:tiny --batch 2 --flush 4"
if tref=$(timed "$T/ex_ref.out" "$I2PMAE" extract $EX -o "$T/ex_ref.h5"); then
  i=1
  while [ $i -le "$N" ]; do
    d=$(moment "1$i" "$(awk -v t="$tref" 'BEGIN { print t * 1.2 + 0.5 }')")
    grid="--stages 1"; [ $((i % 2)) = 0 ] && grid="--stages 2"
    rm -f "$T/ex.h5" "$T/ex.h5.partial"
    state=$(kill_at "$d" "$T/ex_kill.out" $MPIRUN 2 "$I2PMAE" extract $EX $grid -o "$T/ex.h5")
    why=""
    if ! "$I2PMAE" extract $EX -o "$T/ex.h5" > "$T/ex_resume.out" 2>&1; then
      why="resume failed: $(grep error "$T/ex_resume.out" | head -n 1)"
    else
      why=$(same_datasets "$T/ex_ref.h5" "$T/ex.h5")
    fi
    skipped=$(grep -o '"skipped":[0-9]*' "$T/ex_resume.out" | tr -dc 0-9)
    verdict extract "$i" "$d" "$state $grid, resume skipped ${skipped:-?} of 32" "$why"
    i=$((i + 1))
  done
else
  fail extract_reference "the uninterrupted extract failed"
fi

# ---- pretrain: 2 ranks, 24 steps, a checkpoint every 7 ----
PP="--config $TINY --data $T/d.h5 --features $T/f.h5 --batch 8 --micro-batch 2 --epochs 20 --steps 24 --checkpoint-every 7"
if tref=$(timed "$T/pre_ref.out" $MPIRUN 2 "$I2PMAE" pretrain $PP -o "$T/pre_ref"); then
  cut -d, -f1-6 "$T/pre_ref/loss.csv" > "$T/pre_ref.loss"
  i=1
  while [ $i -le "$N" ]; do
    d=$(moment "2$i" "$(awk -v t="$tref" 'BEGIN { print t * 1.2 + 0.5 }')")
    rm -rf "$T/pre"
    state=$(kill_at "$d" "$T/pre_kill.out" $MPIRUN 2 "$I2PMAE" pretrain $PP -o "$T/pre")
    resume=""; ls "$T"/pre/ckpt-*.h5 > /dev/null 2>&1 && resume=--resume
    why=""
    if ! $MPIRUN 2 "$I2PMAE" pretrain $PP -o "$T/pre" $resume > "$T/pre_resume.out" 2>&1; then
      why="resume failed: $(grep error "$T/pre_resume.out" | head -n 1)"
    elif ! cut -d, -f1-6 "$T/pre/loss.csv" | cmp -s - "$T/pre_ref.loss"; then
      why="loss.csv differs"
    else
      why=$(same_datasets "$T/pre_ref/ckpt-00000024.h5" "$T/pre/ckpt-00000024.h5")
    fi
    from=$(sed -n 's/.*"start_step":\([0-9]*\).*/\1/p' "$T/pre_resume.out")
    verdict pretrain "$i" "$d" "$state, resumed at step ${from:-?}" "$why"
    i=$((i + 1))
  done
else
  fail pretrain_reference "the uninterrupted pretrain failed"
fi

# ---- finetune: 2 ranks, 3 epochs of 6 steps from scratch, a checkpoint every epoch ----
FTP="--config $TINY --data $T/d.h5 --test $T/ex_in.h5 --batch 4 --micro-batch 2 --scratch --epochs 3"
if tref=$(timed "$T/ft_ref.out" $MPIRUN 2 "$I2PMAE" finetune $FTP -o "$T/ft_ref"); then
  i=1
  while [ $i -le "$N" ]; do
    d=$(moment "3$i" "$(awk -v t="$tref" 'BEGIN { print t * 1.2 + 0.5 }')")
    rm -rf "$T/ft"
    state=$(kill_at "$d" "$T/ft_kill.out" $MPIRUN 2 "$I2PMAE" finetune $FTP -o "$T/ft")
    resume=""; ls "$T"/ft/ckpt-*.h5 > /dev/null 2>&1 && resume=--resume
    why=""
    if ! $MPIRUN 2 "$I2PMAE" finetune $FTP -o "$T/ft" $resume > "$T/ft_resume.out" 2>&1; then
      why="resume failed: $(grep error "$T/ft_resume.out" | head -n 1)"
    elif ! cmp -s "$T/ft_ref/metrics.csv" "$T/ft/metrics.csv"; then
      why="metrics.csv differs"
    else
      why=$(same_datasets "$T/ft_ref/ckpt-00000018.h5" "$T/ft/ckpt-00000018.h5") &&
        why=$(same_datasets "$T/ft_ref/best.h5" "$T/ft/best.h5")
    fi
    from=$(sed -n 's/.*"start_epoch":\([0-9]*\).*/\1/p' "$T/ft_resume.out")
    verdict finetune "$i" "$d" "$state, resumed at epoch ${from:-?}" "$why"
    i=$((i + 1))
  done
else
  fail finetune_reference "the uninterrupted finetune failed"
fi

echo "$npass passed, $nfail failed (kill soak, seed $SEED)"
[ "$nfail" = 0 ] && [ "$npass" -gt 0 ]
