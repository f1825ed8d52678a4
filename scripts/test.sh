#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: install dependencies, build, run ctest.
# DEMON_TORCH=pytorch runs it against PyTorch 2.x's LibTorch instead of Debian's (see build.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
source "$root/scripts/torch-select.sh"
cd "$DEMON_BUILD_DIR"
exec ctest --output-on-failure --parallel "${DEMON_JOBS:-$(nproc)}"
