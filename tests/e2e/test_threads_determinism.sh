# test_threads_determinism.sh -- `i2pmae pretrain` on the tiny network gives the same losses, to the
# last printed digit, at OMP_NUM_THREADS=1, 2 and 3 (same seed, one rank; docs/pretrain.md,
# "Determinism"). Before the fixed-order sums of the linear weight gradient and the normalisations'
# backwards (docs/performance.md) the second step already differed between 1 and 2 threads. The same
# with --precision bf16 (bf16 matmul inputs, f32 sums), which differed between 1 and 2 threads before
# the bf16 weight gradient was chunked too. Negative control: a run with another seed must compare
# different.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

train_data 16
need_features_file
P="--config $TINY --data $T/d.h5 --features $T/f.h5 --batch 8 --steps 4 --log-every 1"

for t in 1 2 3; do
  check "pretrain_threads$t" env OMP_NUM_THREADS=$t "$I2PMAE" pretrain $P -o "$T/t$t"
  check "pretrain_bf16_threads$t" env OMP_NUM_THREADS=$t "$I2PMAE" pretrain $P --precision bf16 -o "$T/b$t"
done
check "pretrain_threads1_seed1" env OMP_NUM_THREADS=1 "$I2PMAE" pretrain $P --seed 1 -o "$T/s1"

# losses_identical NAME A B: the step and loss columns (1-5) of $T/A/loss.csv and $T/B/loss.csv are the
# same text, 4 rows each.
losses_identical() {
  cut -d, -f1-5 "$T/$2/loss.csv" > "$T/$2.cut" 2> /dev/null
  cut -d, -f1-5 "$T/$3/loss.csv" > "$T/$3.cut" 2> /dev/null
  if [ "$(wc -l < "$T/$2.cut")" = 5 ] && cmp -s "$T/$2.cut" "$T/$3.cut"; then
    pass "$1"
  else
    fail "$1" "$(diff "$T/$2.cut" "$T/$3.cut" 2>&1 | head -4 | tr '\n' ' ')"
  fi
}
losses_identical pretrain_2_threads_same_losses_as_1 t1 t2
losses_identical pretrain_3_threads_same_losses_as_1 t1 t3
losses_identical pretrain_bf16_2_threads_same_losses_as_1 b1 b2
losses_identical pretrain_bf16_3_threads_same_losses_as_1 b1 b3
if cut -d, -f1-5 "$T/s1/loss.csv" | cmp -s - "$T/t1.cut"; then
  fail pretrain_other_seed_differs "seed 0 and seed 1 gave the same losses: the comparison cannot fail"
else
  pass pretrain_other_seed_differs
fi
