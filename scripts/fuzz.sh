#!/usr/bin/env bash
# The fuzz targets (fuzz/): builds them with clang, libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer in build-fuzz/, then runs each: its seed corpus, every input it once
# failed on (fuzz/regressions/), then SECONDS of fuzzing (default 10; CI's brief run).
#   scripts/fuzz.sh [SECONDS] [ctest arguments, e.g. -R checkpoint]
# Installs clang and libFuzzer (Debian: clang, libclang-rt-14-dev) when missing. Which LibTorch:
# as scripts/build.sh (DEMON_TORCH); DEMON_WARNINGS_AS_ERRORS=ON makes clang's warnings errors.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=10
if [[ ${1:-} =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi

bash "$root/scripts/setup.sh" >/dev/null
if ! command -v clang++ >/dev/null 2>&1 ||
  ! compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" >/dev/null; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "fuzz: installing clang and libFuzzer"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends clang \
    libclang-rt-14-dev >/dev/null
fi

export DEMON_BUILD_DIR=${DEMON_BUILD_DIR:-$root/build-fuzz}
source "$root/scripts/torch-select.sh"
jobs=${DEMON_JOBS:-$(nproc)}
generator=()
if command -v ninja >/dev/null 2>&1 && [ ! -f "$DEMON_BUILD_DIR/Makefile" ]; then
  generator=(-G Ninja)
fi
# The engine's files one by one here (the other builds compile them as one unity unit): a file
# that leans on another's includes fails in this build.
CC=clang CXX=clang++ cmake -S "$root" -B "$DEMON_BUILD_DIR" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDEMON_BUILD_FUZZERS=ON -DDEMON_SANITIZE=address,undefined \
  -DDEMON_UNITY_GRAPH=OFF \
  -DDEMON_BUILD_EXAMPLES=OFF -DDEMON_BUILD_TESTS=OFF -DDEMON_BUILD_BENCHMARKS=OFF \
  -DDEMON_WARNINGS_AS_ERRORS="${DEMON_WARNINGS_AS_ERRORS:-OFF}" "${TORCH_CMAKE_ARGS[@]}"
cmake --build "$DEMON_BUILD_DIR" --parallel "$jobs"
cd "$DEMON_BUILD_DIR"
# One target at a time: each uses a core, and the time budget is per target.
DEMON_FUZZ_SECONDS=$seconds ctest --output-on-failure "$@"
