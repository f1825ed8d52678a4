#!/usr/bin/env bash
# The library, its tests and the example built with AddressSanitizer and UndefinedBehaviorSanitizer
# (demon's own code; LibTorch stays as shipped), then ctest on that build. Arguments go to ctest,
# e.g. `scripts/sanitize.sh -R Checkpoint` for a subset. Build dir: build-sanitize/ (or
# DEMON_BUILD_DIR); which LibTorch: as scripts/build.sh (DEMON_TORCH).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export DEMON_BUILD_DIR=${DEMON_BUILD_DIR:-$root/build-sanitize}
source "$root/scripts/torch-select.sh"
jobs=${DEMON_JOBS:-$(nproc)}
generator=()
if command -v ninja >/dev/null 2>&1 && [ ! -f "$DEMON_BUILD_DIR/Makefile" ]; then
  generator=(-G Ninja)
fi
cmake -S "$root" -B "$DEMON_BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDEMON_SANITIZE=address,undefined -DDEMON_BUILD_BENCHMARKS=OFF "${TORCH_CMAKE_ARGS[@]}"
cmake --build "$DEMON_BUILD_DIR" --parallel "$jobs"
# LibTorch's own allocations at exit are not ours to answer for: leaks are reported only when a
# frame of demon's code allocated them (see scripts/lsan.supp).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/scripts/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$DEMON_BUILD_DIR"
ctest --output-on-failure --timeout 1800 -j "$jobs" "$@"
