#!/usr/bin/env bash
# Configures and builds demon (Release) in ${DEMON_BUILD_DIR:-build}. Extra arguments go to the
# CMake configure step, e.g. scripts/build.sh -DDEMON_BUILD_BENCHMARKS=OFF
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${DEMON_BUILD_DIR:-$root/build}
jobs=${DEMON_JOBS:-$(nproc)}

generator=()
if command -v ninja >/dev/null 2>&1 && [ ! -f "$build_dir/Makefile" ]; then
  generator=(-G Ninja)
fi
cmake -S "$root" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" --parallel "$jobs"
