#!/bin/sh
# input/demo/fewshot_demo.sh -- the demo's few-shot setting: 5-way 10-shot, 3 folds, 10 test clouds
# per class, drawn from the synthetic training set; each fold fine-tuned from the pre-trained
# encoder and from scratch (jobs/fewshot-demo.ini: the demo's network, a few epochs); then one table
# (slurm/report.py) and one line with both side by side.
#
#   . input/demo/fewshot_demo.sh; fewshot_demo BIN OUT CHECKPOINT   (from run_demo.sh, after pre-training)
#   sh input/demo/fewshot_demo.sh BIN OUT CHECKPOINT                (alone: OUT/train.h5 must exist)
#
# Writes OUT/fewshot/splits/fold-F.h5 and the runs OUT/fewshot/{pretrained,scratch}/fold-F
# (their JSON lines in summary.json), the table in OUT/fewshot/report.md and .csv.

fewshot_demo() {
  fs_bin=$1 fs_data=$2/train.h5 fs_out=$2/fewshot fs_ckpt=$3
  fs_home=$(cd "$(dirname "$0")/../.." && pwd)
  [ -f "$fs_home/jobs/fewshot-demo.ini" ] || fs_home=${I2PMAE_HOME:-.}
  fs_ini=$fs_home/jobs/fewshot-demo.ini
  fs_mpi="mpirun -np 2 --oversubscribe --bind-to none -x OMP_NUM_THREADS=1"
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  rm -rf "$fs_out"
  mkdir -p "$fs_out/splits" || return 1
  fs_runs=""
  for fs_fold in 0 1 2; do
    fs_split=$fs_out/splits/fold-$fs_fold.h5
    "$fs_bin" fewshot-split --data "$fs_data" --way 5 --shot 10 --query 10 --fold "$fs_fold" --seed 0 \
      -o "$fs_split" > /dev/null || return 1
    for fs_init in pretrained scratch; do
      fs_run=$fs_out/$fs_init/fold-$fs_fold
      mkdir -p "$fs_run"
      if [ $fs_init = pretrained ]; then set -- --checkpoint "$fs_ckpt"; else set -- --scratch; fi
      echo "== demo: few-shot 5-way 10-shot fold $fs_fold, $fs_init encoder"
      $fs_mpi "$fs_bin" finetune --config "$fs_ini" --data "$fs_split" "$@" -o "$fs_run" \
        > "$fs_run/summary.json" 2> "$fs_run/stderr.log" || { tail -n 3 "$fs_run/stderr.log"; return 1; }
      fs_runs="$fs_runs $fs_run"
    done
  done
  # shellcheck disable=SC2086
  /usr/bin/python3 "$fs_home/slurm/report.py" --csv "$fs_out/report.csv" $fs_runs > "$fs_out/report.md" \
    2> /dev/null || { cat "$fs_out/report.md"; return 1; }
  cat "$fs_out/report.md"
  awk -F, '$2 == "test_acc_best" { v[$1] = sprintf("%.1f ± %.1f%%", $5, $6) }
           END { printf "few-shot 5-way 10-shot (3 folds, best epoch): pre-trained %s | scratch %s\n", v["pretrained"], v["scratch"] }' \
    "$fs_out/report.csv"
}

# Run directly: sh input/demo/fewshot_demo.sh BIN OUT CHECKPOINT
case $(basename "$0") in
  fewshot_demo.sh) set -e; fewshot_demo "${1:-./i2pmae}" "${2:-demo-out}" "${3:?the pre-training checkpoint, e.g. demo-out/run/ckpt-00000500.h5}" ;;
esac
