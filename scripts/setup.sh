#!/usr/bin/env bash
# Installs what demon needs to build, test and run on Debian 12. Idempotent: packages already
# present are left alone, and apt is not touched at all when nothing is missing.
#
# DEMON_TORCH=pytorch also installs PyTorch from PyPI into the project's own virtual environment
# .venv/ (git ignores it), for builds against its LibTorch: DEMON_PYTORCH_VERSION, by default the
# newest release pinned in scripts/torch-versions.sh. DEMON_VENV puts the environment elsewhere
# (scripts/compat.sh keeps one per version).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# libopenblas0-openmp: Debian's LibTorch calls the system BLAS for linear layers, and without it
# that is the reference implementation (a one-epoch MLP run of bench_panel took 17 s on it, 7 s
# on OpenBLAS). The OpenMP build follows torch::set_num_threads.
packages=(
  build-essential cmake ninja-build ccache
  libtorch-dev libopenblas0-openmp nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libgloo-dev
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi

apt_install() {
  echo "setup: installing $*"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if ((${#missing[@]} > 0)); then
  apt_install "${missing[@]}"
fi
echo "setup: Debian packages present"

if [ "${DEMON_TORCH:-debian}" != pytorch ]; then
  exit 0
fi

# PyTorch's wheel from PyPI, with the CUDA libraries it depends on, also from PyPI.
#
# Why those and not the machine's CUDA 13 toolkit: libtorch_cuda.so names libcusparseLt.so.0,
# libcufile.so.0 and libnvshmem_host.so.3 as NEEDED, which the toolkit in /usr/local/cuda does not
# carry, so nothing linked to it would even start; and the wheels are exactly the versions torch
# was built and tested with (cuDNN, NCCL …), which its RPATH ($ORIGIN/../../nvidia/...)
# finds without LD_LIBRARY_PATH. The toolkit is still needed at configure time: torch's CMake
# config enables the CUDA language (nvcc) and finds the CUDA headers through it. 2.15.0 takes
# 5.4 GB installed. pip keeps no cache of the wheels (--no-cache-dir): that would be gigabytes
# more on a disk that also holds two build trees.
source "$root/scripts/torch-versions.sh"
version=${DEMON_PYTORCH_VERSION:-$DEMON_PYTORCH_NEWEST}
venv=${DEMON_VENV:-$root/.venv}
if [ -x "$venv/bin/python" ] &&
  [ "$("$venv/bin/python" -c 'import torch, safetensors; print(torch.__version__.split("+")[0])' 2>/dev/null | tail -n 1)" = "$version" ]; then
  echo "setup: PyTorch $version present in $venv"
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  python=""
  for candidate in python3 /usr/bin/python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      python=$candidate
      break
    fi
  done
  if [ -z "$python" ]; then
    apt_install python3-venv
    python=/usr/bin/python3
  fi
  "$python" -m venv "$venv"
fi
# The wheels and the unpacked install lie on disk together for a moment: pip downloads and
# unpacks under $TMPDIR, and installs under the project. Where both are one file system, it needs
# both amounts there.
install_gb=6
download_gb=3
tmp=${TMPDIR:-/tmp}
free_gb() { df -Pk "$1" | awk 'NR == 2 { print int($4 / 1048576) }'; }
if [ "$(df -P "$root" | awk 'NR == 2 { print $1 }')" = "$(df -P "$tmp" | awk 'NR == 2 { print $1 }')" ]; then
  needed=("$root" $((install_gb + download_gb)))
else
  needed=("$root" "$install_gb" "$tmp" "$download_gb")
fi
for ((i = 0; i < ${#needed[@]}; i += 2)); do
  place=${needed[i]} gb=${needed[i + 1]}
  if [ "$(free_gb "$place")" -lt "$gb" ]; then
    echo "setup: only $(free_gb "$place") GB free under $place; installing PyTorch $version with" \
      "its CUDA libraries needs about $gb GB there (free some space, point TMPDIR elsewhere, or" \
      "set DEMON_TORCH=debian)" >&2
    exit 1
  fi
done
echo "setup: installing PyTorch $version (LibTorch with CUDA) into $venv"
# safetensors: tools/demon_to_pytorch.py reads exported models with it (and its test runs it).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-cache-dir \
  "torch==$version" numpy \
  safetensors
echo "setup: $("$venv/bin/python" -c 'import torch; print("PyTorch", torch.__version__, "CUDA", torch.version.cuda)' 2>/dev/null | tail -n 1)"
