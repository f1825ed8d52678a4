#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine: install dependencies, build, run ctest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
cd "${DEMON_BUILD_DIR:-$root/build}"
exec ctest --output-on-failure --parallel "${DEMON_JOBS:-$(nproc)}"
