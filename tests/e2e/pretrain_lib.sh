# tests/e2e/pretrain_lib.sh -- shared fixture of the pretrain and svm suites (sourced after lib.sh):
# a tiny network configuration, synthetic data and its features file.
# make_features DATA OUT [VIEWS]: a features file for DATA written by tests/ref/make_features.py
# (h5py; the layout of docs/features.md without running the ViT), or by `i2pmae extract --vit
# random:tiny` when I2PMAE_TEST_EXTRACT=1.
# need_features_writer: prints a SKIP line (with the reason) and ends the suite if neither writer of
# the features file can run (h5py missing and I2PMAE_TEST_EXTRACT unset).
# train_data SAMPLES: $T/d.h5, SAMPLES synthetic clouds of 256 points (seed 3), and its features
# $T/f.h5 (checks synth_train, features); need_features_file ends the suite (FAIL features_missing)
# when $T/f.h5 is not there.
# finetune_fixture: the fine-tuning suites' data: $T/d.h5 (48 clouds) with $T/f.h5, test data
# $T/te.h5 (24 clouds, seed 4) and PRE, a pre-training checkpoint of 2 steps (checks synth_train,
# synth_test, features, pretrain_for_finetune); ends the suite (FAIL pretrain_checkpoint_missing)
# without PRE.

export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} # 2 shared cores: one thread per rank
MPIRUN="mpirun --oversubscribe --bind-to none -np" # for expect_error (no shell functions)
TINY="$T/tiny.ini"
cat > "$TINY" <<'INI'
# tiny network for tests (keys in the global section: read by pretrain and svm)
points = 128
groups = 32,16,8
k = 8,4,4
dims = 12,24,48
depths = 1,1,1
heads = 2
dec-dims = 48,24
dec-depths = 1,1
embed-hidden = 8,16,32
drop-path = 0
[pretrain]
epochs = 4
warmup-epochs = 1
sched-epochs = 5
lr = 0.002
log-every = 1
INI

make_features() {
  if [ "${I2PMAE_TEST_EXTRACT:-0}" = 1 ]; then
    "$I2PMAE" extract --input "$1" --vit random:tiny -o "$2" --views "${3:-3}"
  else
    $PY "$ROOT/tests/ref/make_features.py" "$1" "$2" "${3:-3}"
  fi
}

need_features_writer() {
  if [ "${I2PMAE_TEST_EXTRACT:-0}" != 1 ] && ! have_h5py; then
    skip features "python3 h5py/numpy missing (tests/ref/make_features.py); I2PMAE_TEST_EXTRACT=1 uses extract"
    exit 0
  fi
}

train_data() {
  check synth_train "$I2PMAE" synth --samples "$1" --points 256 --seed 3 -o "$T/d.h5"
  check features make_features "$T/d.h5" "$T/f.h5"
}

need_features_file() {
  [ -f "$T/f.h5" ] || { fail features_missing "no features file; stopping"; exit 0; }
}

finetune_fixture() {
  check synth_train "$I2PMAE" synth --samples 48 --points 256 --seed 3 -o "$T/d.h5"
  check synth_test "$I2PMAE" synth --samples 24 --points 256 --seed 4 -o "$T/te.h5"
  check features make_features "$T/d.h5" "$T/f.h5"
  check pretrain_for_finetune "$I2PMAE" pretrain --config "$TINY" --data "$T/d.h5" --features "$T/f.h5" \
    -o "$T/pre" --batch 8 --steps 2
  PRE="$T/pre/ckpt-00000002.h5"
  [ -f "$PRE" ] || { fail pretrain_checkpoint_missing "no pre-training checkpoint; stopping"; exit 0; }
}

# losses_equal NAME A.csv B.csv RELTOL [FIRST_STEP]: the loss columns (3-5) of the rows with
# step >= FIRST_STEP agree within RELTOL (relative, or absolute below 1e-6) and both have rows.
losses_equal() {
  awk -F, -v tol="$4" -v first="${5:-0}" '
    FNR == 1 { next }
    NR == FNR { if ($1 >= first) { a[$1] = $3 " " $4 " " $5; na++ } next }
    $1 >= first { nb++; if (!($1 in a)) { print "step " $1 " missing"; bad = 1; next }
      split(a[$1], x, " ")
      for (i = 3; i <= 5; i++) { d = $i - x[i - 2]; if (d < 0) d = -d; m = x[i - 2] < 0 ? -x[i - 2] : x[i - 2]
        if (d > tol * m && d > 1e-6) { print "step " $1 " column " i ": " x[i - 2] " vs " $i; bad = 1 } } }
    END { if (na == 0 || na != nb) { print "rows: " na " vs " nb; bad = 1 } exit bad }' "$2" "$3" > "$T/cmp.out" 2>&1
  if [ $? = 0 ]; then pass "$1"; else fail "$1" "$(head -3 "$T/cmp.out" | tr '\n' ' ')"; fi
}

# loss_curve_stats FP32.csv OTHER.csv: how far OTHER's loss curve (column 3) is from FP32's over their
# common steps 1..n: "mean_rel R ma_max M at S": R = mean |loss difference| / mean fp32 loss over the
# last 50 steps (all if fewer); M = max over steps of the relative difference of the 25-step moving
# averages (at step S).
loss_curve_stats() {
  awk -F, 'FNR == 1 { next }
    NR == FNR { a[$1] = $3; next }
    ($1 in a) { b[$1] = $3; if ($1 > n) n = $1 }
    END {
      w = n < 25 ? n : 25; first = n > 50 ? n - 49 : 1; s = 0; m = 0; mx = 0; at = 0
      for (i = first; i <= n; i++) { d = b[i] - a[i]; s += d < 0 ? -d : d; m += a[i] }
      for (i = w; i <= n; i++) {
        sa = 0; sb = 0
        for (j = i - w + 1; j <= i; j++) { sa += a[j]; sb += b[j] }
        r = (sb - sa) / sa; if (r < 0) r = -r; if (r > mx) { mx = r; at = i } }
      printf "mean_rel %.4f ma_max %.4f at %d steps %d\n", s / m, mx, at, n }' "$1" "$2"
}
