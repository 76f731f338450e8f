# slurm/runs.sh -- sourced (after slurm/launch.sh) by the job arrays slurm/fewshot.sbatch and
# slurm/seeds.sbatch: one run directory per array task, its result recorded for slurm/report.py.
#
# Provides:
#   i2p_section_value FILE SECTION KEY   the value of KEY in [SECTION] of the INI FILE (nothing if unset)
#   i2p_study_value KEY DEFAULT          I2PMAE_<KEY> from the environment (upper case, - -> _),
#                                        else KEY in [$I2P_STUDY] of $I2P_STUDY_CONFIG, else DEFAULT
#   i2p_task_id                          the array task id (SLURM_ARRAY_TASK_ID, else I2PMAE_TASK)
#   i2p_run_done RUNDIR                  true (and says so) when RUNDIR holds a finished run
#   i2p_run_step RUNDIR NP CMD ARGS...   runs `i2pmae CMD ARGS...` on NP ranks unless RUNDIR/CMD.json
#                                        says it is done; output appended to RUNDIR/CMD.log (and the
#                                        job's output); on success its JSON line -> RUNDIR/CMD.json,
#                                        on failure its status -> RUNDIR/exit_status. Returns it.
#   i2p_run_finish RUNDIR CMD            RUNDIR/CMD.json becomes the run's summary.json, and
#                                        exit_status 0
# A run directory's record (read by slurm/report.py): summary.json and exit_status 0 after the
# whole run succeeded; exit_status N after a step failed with status N (removed when a step
# starts, so a run killed mid-way has neither: "not finished"). Files go through .partial + rename.

i2p_section_value() {
  [ -f "$1" ] || return 0
  awk -v want="$2" -v key="$3" '
    { sub(/[;#].*/, "") }
    /^[ \t]*\[/ { gsub(/[][ \t]/, ""); sec = $0; next }
    sec == want && index($0, "=") {
      k = substr($0, 1, index($0, "=") - 1); v = substr($0, index($0, "=") + 1)
      gsub(/^[ \t]+|[ \t]+$/, "", k); gsub(/^[ \t]+|[ \t]+$/, "", v)
      if (k == key) found = v
    }
    END { if (found != "") print found }' "$1"
}

i2p_study_value() {
  local var v
  var=I2PMAE_$(echo "$1" | tr 'a-z-' 'A-Z_')
  v=${!var:-}
  [ -n "$v" ] || v=$(i2p_section_value "${I2P_STUDY_CONFIG:-}" "$I2P_STUDY" "$1")
  echo "${v:-$2}"
}

i2p_task_id() {
  local t=${SLURM_ARRAY_TASK_ID:-${I2PMAE_TASK:-}}
  case $t in
    ''|*[!0-9]*) i2p_die "task id '$t': submit with sbatch --array=0-N (or set I2PMAE_TASK=N to run one task by hand)" ;;
  esac
  echo "$t"
}

# The last JSON summary line of LOG (nothing if none).
i2p_last_summary() { grep '^{"i2pmae"' "$1" 2>/dev/null | tail -n 1; }

# i2p_keep LINE FILE: writes LINE to FILE through FILE.partial and a rename.
i2p_keep() { printf '%s\n' "$1" > "$2.partial" && mv -f "$2.partial" "$2"; }

i2p_run_done() {
  if [ -s "$1/summary.json" ]; then
    echo "i2pmae-job: $1 is finished (summary.json): nothing to do"
    return 0
  fi
  return 1
}

i2p_run_step() {
  local dir=$1 np=$2 cmd=$3 rc line
  shift 2
  mkdir -p "$dir" || i2p_die "cannot create $dir"
  if [ -s "$dir/$cmd.json" ]; then echo "i2pmae-job: $dir/$cmd.json: $cmd already done"; return 0; fi
  rm -f "$dir/exit_status"
  # A command that finished just before the job was killed: its JSON line is already in the log.
  line=$(i2p_last_summary "$dir/$cmd.log")
  if [ -n "$line" ]; then
    echo "i2pmae-job: $dir/$cmd.log ends with a finished $cmd run: keeping it"
    rc=0
  else
    # in the background, so that a preemption signal reaches the ranks (i2p_wait_requeue below)
    (i2p_launch "$np" "$@" 2>&1 | tee -a "$dir/$cmd.log"; exit "${PIPESTATUS[0]}") &
    I2P_NO_REQUEUE=1 i2p_wait_requeue $! "$cmd" "$np"
    rc=$?
    [ "$rc" = 0 ] && line=$(i2p_last_summary "$dir/$cmd.log")
    [ "$rc" = 0 ] && [ -z "$line" ] && { echo "i2pmae-job: $cmd exited 0 without a JSON line"; rc=70; }
  fi
  # exit_status is the whole run's: a failed step's status, or 0 once summary.json is there.
  if [ "$rc" = 0 ]; then i2p_keep "$line" "$dir/$cmd.json"; else echo "$rc" > "$dir/exit_status"; fi
  echo "i2pmae-job: $cmd exited with status $rc at $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  [ "$rc" = 75 ] && i2p_requeue # stopped by a preemption signal with its state saved: run again
  return "$rc"
}

# i2p_run_finish RUNDIR CMD: CMD's JSON line becomes the run's summary.json; exit status 0.
i2p_run_finish() { i2p_keep "$(cat "$1/$2.json")" "$1/summary.json" && echo 0 > "$1/exit_status"; }
