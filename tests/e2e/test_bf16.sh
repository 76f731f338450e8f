# test_bf16.sh -- `--precision bf16` (bf16 matmul inputs, f32 accumulation; docs/model3d.md):
#  - loss curve: 500 steps of the tiny network pre-trained in bf16 stay within the bound of the same
#    run in fp32: over the last 50 steps mean |loss_bf16 - loss_fp32| / mean loss_fp32 < 3 %, and the
#    25-step moving averages within 8 % at every step. Measured: 1.0 % and 4.1 %. Negative control: an
#    fp32 run with another seed (initialisation, data order, masks) is outside the bound (measured
#    5.7-7 % and 16-27 %), so the bound separates rounding noise from a different run;
#  - bf16 is bitwise independent of the rank count (pretrain and finetune, fixed micro-batch) and of
#    the pipeline split (pretrain --stages 2);
#  - the precision is in the run configuration: resuming with another precision is refused; the
#    JSON line names it; a bad value is a usage error.
# Skipped (but for the error message) where the CPU has neither avx512_bf16 nor AMX.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

train_data 48
P="--config $TINY --data $T/d.h5 --features $T/f.h5 --batch 8 --micro-batch 2"
expect_error bf16_bad_value "--precision fp16: must be fp32 or bf16" "$I2PMAE" pretrain $P -o "$T/bad" --precision fp16
if ! grep -qw -e avx512_bf16 -e amx_bf16 /proc/cpuinfo; then
  expect_error bf16_unsupported_cpu "--precision bf16: this CPU has neither avx512_bf16 nor AMX" \
    "$I2PMAE" pretrain $P -o "$T/nobf16" --precision bf16 --steps 1
  skip bf16 "the CPU has neither avx512_bf16 nor AMX"
  exit 0
fi

# ---- the loss curve: 500 steps, fp32 vs bf16, and an fp32 run with another seed ----
L="$P --steps 500 --epochs 100 --sched-epochs 100 --log-every 1 --checkpoint-every 1000"
check bf16_curve_fp32 "$I2PMAE" pretrain $L -o "$T/fp32"
check bf16_curve_bf16 "$I2PMAE" pretrain $L -o "$T/bf16" --precision bf16
check bf16_curve_seed1 "$I2PMAE" pretrain $L -o "$T/seed1" --seed 1
# within NAME OTHER: passes if OTHER's curve is within the bound of fp32's (prints the figures)
within() {
  st=$(loss_curve_stats "$T/fp32/loss.csv" "$2")
  echo "$1: $st (bound: mean_rel < 0.03, ma_max < 0.08, 500 steps)"
  echo "$st" | awk '{ exit !($2 < 0.03 && $4 < 0.08 && $8 == 500) }'
}
if within bf16_curve "$T/bf16/loss.csv"; then pass bf16_loss_curve_within_bound; else fail bf16_loss_curve_within_bound "$st"; fi
if within other_seed "$T/seed1/loss.csv"; then fail bf16_bound_rejects_other_seed "$st"; else pass bf16_bound_rejects_other_seed; fi
check bf16_curves_differ sh -c "! cmp -s '$T/fp32/loss.csv' '$T/bf16/loss.csv'"

# ---- rank-count independence, bitwise ----
for np in 1 2; do
  check "bf16_pretrain_np$np" mpi $np "$I2PMAE" pretrain $P -o "$T/np$np" --steps 12 --precision bf16
done
check bf16_pretrain_np2_bitwise_np1 sh -c "cut -d, -f1-6 '$T/np1/loss.csv' > '$T/a.csv' && cut -d, -f1-6 '$T/np2/loss.csv' > '$T/b.csv' && cmp '$T/a.csv' '$T/b.csv'"
# and of the pipeline: 2 stages (each stage's slot runs read the bf16 weights of the step's parameters)
check bf16_pretrain_s2 mpi 2 "$I2PMAE" pretrain $P -o "$T/s2" --steps 12 --precision bf16 --stages 2
check bf16_pretrain_s2_bitwise_np1 sh -c "cut -d, -f1-6 '$T/s2/loss.csv' > '$T/c.csv' && cmp '$T/a.csv' '$T/c.csv'"
if have_h5py; then
  check bf16_pretrain_np2_params_bitwise_np1 $PY -c "
import h5py, numpy, sys
a = h5py.File('$T/np1/ckpt-00000012.h5', 'r')['params'][...]
b = h5py.File('$T/np2/ckpt-00000012.h5', 'r')['params'][...]
sys.exit(0 if numpy.array_equal(a.view('u4'), b.view('u4')) else 1)"
fi
check synth_test "$I2PMAE" synth --samples 24 --points 256 --seed 4 -o "$T/te.h5"
FT="--config $TINY --data $T/d.h5 --test $T/te.h5 --batch 8 --micro-batch 2 --warmup-epochs 1 --lr 0.002 --epochs 2 --precision bf16"
for np in 1 2; do
  mpi $np "$I2PMAE" finetune $FT --checkpoint "$T/np1/ckpt-00000012.h5" -o "$T/ft$np" > "$T/ft$np.out" 2>&1
  check "bf16_finetune_np$np" grep -q '"command":"finetune".*"precision":"bf16"' "$T/ft$np.out"
done
check bf16_finetune_np2_metrics_bitwise_np1 cmp "$T/ft1/metrics.csv" "$T/ft2/metrics.csv"

# ---- configuration, JSON line ----
check bf16_json_precision sh -c "mpirun -np 1 '$I2PMAE' pretrain $P -o '$T/json' --steps 2 --precision bf16 2>&1 | tail -n 1 | grep -q '\"precision\":\"bf16\"'"
check fp32_json_precision sh -c "'$I2PMAE' pretrain $P -o '$T/json32' --steps 2 2>&1 | tail -n 1 | grep -q '\"precision\":\"fp32\"'"
expect_error bf16_resume_as_fp32 "configuration differs: 'train\.precision' is \"bf16\" in the checkpoint but \"fp32\" here" \
  "$I2PMAE" pretrain $P -o "$T/np1" --steps 20 --resume
expect_error fp32_resume_as_bf16 "configuration differs: 'train\.precision' is \"fp32\" in the checkpoint but \"bf16\" here" \
  "$I2PMAE" pretrain $P -o "$T/json32" --steps 4 --resume --precision bf16
expect_error bf16_finetune_resume_as_fp32 "configuration differs: 'train\.precision' is \"bf16\" in the checkpoint but \"fp32\" here" \
  "$I2PMAE" finetune --config "$TINY" --data "$T/d.h5" --test "$T/te.h5" --batch 8 --micro-batch 2 --warmup-epochs 1 \
  --lr 0.002 --sched-epochs 2 --epochs 3 --checkpoint "$T/np1/ckpt-00000012.h5" -o "$T/ft1" --resume
check bf16_resume_same_precision "$I2PMAE" pretrain $P -o "$T/np1" --steps 14 --resume --precision bf16
