# test_cli.sh -- the command-line surface: help, version, unknown commands/options, config files,
# the data x stage grid check, and the stubs of unimplemented commands.
. "$(dirname "$0")/../lib.sh"

check version sh -c "$I2PMAE --version | grep -q '^i2pmae [0-9]'"
check help_lists_commands sh -c "$I2PMAE --help | grep -q extract"
expect_error unknown_command "unknown command 'frobnicate'" "$I2PMAE" frobnicate

# Config files (INI) and the command line, through `synth` (its JSON line echoes samples/points).
printf '# demo job\n[synth]\nsamples = 5\npoints = 7\n[extract]\nviews = 99\n' > "$T/job.ini"
json() { "$I2PMAE" "$@" 2>/dev/null | tail -1; }
out=$(json synth --config "$T/job.ini" -o "$T/c1.h5")
case "$out" in *'"samples":5,"points":7'*) pass config_overrides_defaults ;; *) fail config_overrides_defaults "$out" ;; esac
out=$(json synth --points 9 --config "$T/job.ini" -o "$T/c2.h5")
case "$out" in *'"samples":5,"points":9'*) pass command_line_overrides_config ;; *) fail command_line_overrides_config "$out" ;; esac
out=$(json synth --config="$T/job.ini" --samples=6 --output="$T/c3.h5")
case "$out" in *'"samples":6,"points":7'*) pass equals_syntax ;; *) fail equals_syntax "$out" ;; esac
printf 'samples = 4\n' > "$T/global.ini"
out=$(json synth --config "$T/global.ini" --points 3 -o "$T/c4.h5")
case "$out" in *'"samples":4,"points":3'*) pass config_global_section ;; *) fail config_global_section "$out" ;; esac
printf '[synth]\nsamples = 5\nbogus = 1\n' > "$T/badkey.ini"
expect_error config_unknown_key "badkey.ini:3: unknown key 'bogus' for 'synth'" "$I2PMAE" synth --config "$T/badkey.ini" -o "$T/x.h5"
printf '[synht]\nsamples = 5\n' > "$T/badsec.ini"
expect_error config_unknown_section "badsec.ini:2: unknown section \[synht\]" "$I2PMAE" synth --config "$T/badsec.ini" -o "$T/x.h5"
printf '[synth]\nsamples = 1x\n' > "$T/badval.ini"
expect_error config_malformed_value "badval.ini:2: --samples: '1x' is not an integer" "$I2PMAE" synth --config "$T/badval.ini" -o "$T/x.h5"
printf '[synth]\nthis line has no equals sign\n' > "$T/badline.ini"
expect_error config_malformed_line "badline.ini:2: malformed line" "$I2PMAE" synth --config "$T/badline.ini" -o "$T/x.h5"
expect_error config_missing_file "nope.ini: cannot open config file" "$I2PMAE" synth --config "$T/nope.ini" -o "$T/x.h5"
expect_error unknown_option "unknown option '--bogus' for 'synth'" "$I2PMAE" synth --bogus 3 -o "$T/x.h5"
expect_error short_option "unknown option '-n'" "$I2PMAE" synth -n 3 -o "$T/x.h5"
expect_error malformed_value "--samples: 'abc' is not an integer" "$I2PMAE" synth --samples abc -o "$T/x.h5"
expect_error malformed_flag "--force: 'maybe' is not a boolean" "$I2PMAE" synth --force=maybe -o "$T/x.h5"
expect_error missing_value "--points: missing P" "$I2PMAE" synth -o "$T/x.h5" --points
expect_error unknown_option_np2 "unknown option '--bogus'" mpirun -np 2 --oversubscribe --bind-to none "$I2PMAE" synth --bogus 3 -o "$T/x.h5"
no_file no_output_after_usage_errors "$T/x.h5"
expect_error info_needs_file "'info' takes 1 argument, got 0" "$I2PMAE" info
for c in synth convert info; do
  check "help_$c" sh -c "'$I2PMAE' $c --help | grep -q '^usage: i2pmae $c'"
done
check help_shows_short_output sh -c "'$I2PMAE' synth --help | grep -q -- '-o, --output FILE'"

# One process started without a launcher runs MPI without an orted daemon (main.c,
# singleton_mpi_defaults), not even when the test environment's settings (tests/mpi_env.sh) are
# removed; a user's own OMPI_MCA_ess_singleton_isolated=0 is kept, and then the daemon is there
# (which shows that the count below can see it). orted_children ENV...: the most orted processes
# whose parent is a single i2pmae, counted every 0.2 s while it runs (MPI_Init, then a 3 s pause in
# set-up: I2PMAE_TEST_SETUP_SLEEP, then the error of a missing file).
orted_children() {
  env -u OMPI_MCA_pml -u OMPI_MCA_ess_singleton_isolated "$@" I2PMAE_TEST_SETUP_SLEEP=3 \
    "$I2PMAE" pretrain --data "$T/none.h5" -o "$T/sg" > /dev/null 2>&1 &
  sp=$!
  most=0
  for _ in $(seq 1 100); do # until it has exited (gone, or a zombie not yet waited for); 20 s at most
    st=$(awk '{ print $3 }' "/proc/$sp/stat" 2> /dev/null)
    if [ -z "$st" ] || [ "$st" = Z ]; then break; fi
    n=$(pgrep -P "$sp" -x orted | wc -l)
    [ "$n" -gt "$most" ] && most=$n
    sleep 0.2
  done
  wait "$sp"
  echo "$most"
}
n=$(orted_children)
if [ "$n" = 0 ]; then pass singleton_without_orted; else fail singleton_without_orted "$n orted child processes"; fi
n=$(orted_children OMPI_MCA_ess_singleton_isolated=0)
if [ "$n" = 1 ]; then pass singleton_user_setting_kept; else fail singleton_user_setting_kept "$n orted child processes (want 1)"; fi
