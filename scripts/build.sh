#!/usr/bin/env bash
# Configures and builds demon (Release). Extra arguments go to the CMake configure step, e.g.
#   scripts/build.sh -DDEMON_BUILD_BENCHMARKS=OFF
# Which LibTorch: DEMON_TORCH=debian (default, build/) or DEMON_TORCH=pytorch (build-pytorch/);
# see scripts/torch-select.sh. DEMON_BUILD_DIR overrides the build directory, DEMON_JOBS the
# parallelism; DEMON_WARNINGS_AS_ERRORS=ON makes warnings errors (CI does).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/torch-select.sh"
jobs=${DEMON_JOBS:-$(nproc)}

generator=()
if command -v ninja >/dev/null 2>&1 && [ ! -f "$DEMON_BUILD_DIR/Makefile" ]; then
  generator=(-G Ninja)
fi
echo "build: LibTorch from $DEMON_TORCH into $DEMON_BUILD_DIR"
cmake -S "$root" -B "$DEMON_BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DDEMON_WARNINGS_AS_ERRORS="${DEMON_WARNINGS_AS_ERRORS:-OFF}" "${TORCH_CMAKE_ARGS[@]}" "$@"
cmake --build "$DEMON_BUILD_DIR" --parallel "$jobs"
