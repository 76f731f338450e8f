#!/bin/sh
# Installs the Debian packages i2pmae needs, only those that are missing.
# Runs `apt-get update` once, and only when something is missing. No-op otherwise.
# Arguments: more packages to require (`make fuzz` adds clang and its fuzzer runtime).
set -eu
PKGS="build-essential pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools \
libdnnl-dev liblinear-dev libssl-dev libcmocka-dev libcjson-dev libinih-dev libpng-dev gnuplot-nox \
python3-torch python3-h5py-mpi python3-numpy libopenblas0-pthread slurm-wlm munge $*"
missing=""
for p in $PKGS; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
if [ -z "$missing" ]; then
  echo "deps: all Debian packages present"
  exit 0
fi
echo "deps: installing:$missing"
if [ "$(id -u)" != 0 ]; then
  echo "deps: error: missing packages and not root; install them with apt-get:$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
t0=$(date +%s)
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
echo "deps: done in $(( $(date +%s) - t0 )) s"
