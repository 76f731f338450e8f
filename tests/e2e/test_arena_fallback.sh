# test_arena_fallback.sh -- the step arena (src/arena.c) reserves one 64 GiB address range at its
# first allocation; where the kernel refuses it (here an address-space limit, `ulimit -v`, as some
# clusters set) it falls back to chunks. The run must then work and give the same losses to the last
# printed digit. The JSON's step_arena_bytes tells which arena ran: the reserved range reports its
# peak in use, chunks their total size, which is larger (a chunk's skipped tail, chunks sized for
# other phases), so equal figures would mean the limit did not force the fallback.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/pretrain_lib.sh"
need_features_writer

train_data 16
need_features_file
P="--config $TINY --data $T/d.h5 --features $T/f.h5 --batch 8 --steps 3 --log-every 1"

check pretrain_reserved_arena env OMP_NUM_THREADS=1 "$I2PMAE" pretrain $P -o "$T/r"
cp "$T/check.out" "$T/r.out"
# 8 GiB of address space: the whole run fits, a 64 GiB reservation does not.
check pretrain_chunked_arena sh -c "ulimit -v 8388608 && OMP_NUM_THREADS=1 exec \"\$0\" pretrain $P -o '$T/c'" \
  "$I2PMAE"
cp "$T/check.out" "$T/c.out"

arena_bytes() { sed -n 's/.*"step_arena_bytes":\([0-9]*\).*/\1/p' "$1" | tail -n 1; }
a=$(arena_bytes "$T/r.out"); b=$(arena_bytes "$T/c.out")
if [ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ]; then
  echo "step_arena_bytes: reserved $a, chunks $b"; pass arena_fallback_taken
else
  fail arena_fallback_taken "step_arena_bytes reserved '$a', under ulimit -v '$b': expected chunks (larger)"
fi
cut -d, -f1-5 "$T/r/loss.csv" > "$T/r.cut" 2> /dev/null
cut -d, -f1-5 "$T/c/loss.csv" > "$T/c.cut" 2> /dev/null
if [ "$(wc -l < "$T/r.cut")" = 4 ] && cmp -s "$T/r.cut" "$T/c.cut"; then
  pass arena_fallback_same_losses
else
  fail arena_fallback_same_losses "$(diff "$T/r.cut" "$T/c.cut" 2>&1 | head -4 | tr '\n' ' ')"
fi
