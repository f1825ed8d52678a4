# Sourced by the other scripts: which LibTorch to build against, from DEMON_TORCH.
#
#   DEMON_TORCH=debian   (default) Debian's libtorch-dev, LibTorch 1.13, CPU only. Build dir build/.
#   DEMON_TORCH=pytorch  the LibTorch inside PyTorch 2.x's wheel (CUDA 13), of the interpreter
#                        DEMON_PYTHON (default: the project's .venv that `setup.sh` fills, else
#                        python3). Build dir build-pytorch/.
#
# Sets DEMON_BUILD_DIR (unless already set) and the array TORCH_CMAKE_ARGS for the configure step.
# shellcheck shell=bash

DEMON_TORCH=${DEMON_TORCH:-debian}
TORCH_CMAKE_ARGS=()

case "$DEMON_TORCH" in
  debian)
    DEMON_BUILD_DIR=${DEMON_BUILD_DIR:-$root/build}
    ;;
  pytorch)
    if [ -z "${DEMON_PYTHON:-}" ]; then
      if [ -x "$root/.venv/bin/python" ]; then
        DEMON_PYTHON=$root/.venv/bin/python
      else
        DEMON_PYTHON=python3
      fi
    fi
    if ! torch_root=$("$DEMON_PYTHON" -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null | tail -n 1) ||
      [ -z "$torch_root" ]; then
      echo "DEMON_TORCH=pytorch: $DEMON_PYTHON cannot import torch; run DEMON_TORCH=pytorch bash scripts/setup.sh" >&2
      return 1 2>/dev/null || exit 1
    fi
    DEMON_BUILD_DIR=${DEMON_BUILD_DIR:-$root/build-pytorch}
    # The torch package root goes first: with only its share/cmake, TorchConfig's find_library
    # reports Debian's /usr/lib/libtorch.so as "Found Torch" when both are installed (linking
    # still uses the wheel's imported targets, but the message misleads). Prefixes already on
    # CMAKE_PREFIX_PATH (our other dependencies on the GPU machine) follow.
    TORCH_CMAKE_ARGS+=("-DCMAKE_PREFIX_PATH=$torch_root;$torch_root/share/cmake${CMAKE_PREFIX_PATH:+;$CMAKE_PREFIX_PATH}")
    # torch's CMake config enables CUDA and looks for nvcc; the toolkit lives here by default.
    if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
      export PATH="/usr/local/cuda/bin:$PATH"
    fi
    # demon compiles no CUDA kernels of its own; naming the architecture (H100/H200: 9.0) spares
    # torch's config a GPU probe that fails on machines without one.
    TORCH_CMAKE_ARGS+=("-DTORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}")
    ;;
  *)
    echo "DEMON_TORCH must be debian or pytorch, not '$DEMON_TORCH'" >&2
    return 1 2>/dev/null || exit 1
    ;;
esac
export DEMON_TORCH DEMON_BUILD_DIR
