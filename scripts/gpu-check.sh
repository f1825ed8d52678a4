#!/usr/bin/env bash
# The whole GPU validation in one command, for a machine with PyTorch 2.x (CUDA), nvcc, cmake and
# ninja, and no network:
#
#   CIFAR10_DIR=/data/cifar10 scripts/gpu-check.sh OUT_DIR [--quick]
#
# 1. builds demon against the LibTorch of DEMON_PYTHON's torch (default: the project's .venv if
#    present, else python3) in build-pytorch/ (a warm build directory is reused);
# 2. runs the whole test suite, the CUDA tests included where a GPU is present;
# 3. runs the benchmarks (bench_engine, bench_pruner);
# 4. trains the example twice, DemP and its dense twin: on a GPU at full width for a few epochs
#    (configs/gpu_check.json) on CIFAR10_DIR (the binary release; synthetic data without it);
#    then profiles a training step (bench_step_profile) of the dense model, of random cuts and of
#    the model the DemP run ended with;
# 5. writes every figure into OUT_DIR/gpu-check.json, beside each step's log.
#
# Without a GPU, or with --quick, it still runs end to end at CPU sizes: CUDA tests and
# benchmarks skip, the example runs configs/smoke.json on synthetic data for 2 epochs. CI runs it
# that way so that it cannot rot.
#
# Our other dependencies (CLI11, spdlog, nlohmann_json, GoogleTest, Google Benchmark) come from
# the system, or from Debian .deb files in DEMON_DEBS_DIR, unpacked into DEMON_DEPS_PREFIX
# (default /tmp/demon-deps) without root. Exit status: 0 when every step succeeded.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  echo "usage: $0 OUT_DIR [--quick]" >&2
  exit 2
}
[ $# -ge 1 ] || usage
out=$1
shift
quick=false
for arg in "$@"; do
  case "$arg" in
    --quick) quick=true ;;
    *) usage ;;
  esac
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
: >"$out/steps.tsv"

if [ -n "${DEMON_DEBS_DIR:-}" ]; then
  prefix=${DEMON_DEPS_PREFIX:-/tmp/demon-deps}
  if [ ! -f "$prefix/.unpacked" ]; then
    mkdir -p "$prefix"
    for deb in "$DEMON_DEBS_DIR"/*.deb; do dpkg -x "$deb" "$prefix"; done
    touch "$prefix/.unpacked"
  fi
  export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+;$CMAKE_PREFIX_PATH}"
  export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

export DEMON_TORCH=pytorch
source "$root/scripts/torch-select.sh" || exit 1
jobs=${DEMON_JOBS:-$(nproc)}

gpu=$("$DEMON_PYTHON" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null | tail -n 1)
if [ "$gpu" = 1 ] && ! $quick; then
  mode=gpu
else
  mode=cpu
fi
echo "gpu-check: mode $mode, LibTorch of $DEMON_PYTHON, build in $DEMON_BUILD_DIR, results in $out"

# step NAME COMMAND...: runs COMMAND with its output in OUT_DIR/NAME.log, records status and time.
failed=0
step() {
  local name=$1
  shift
  local start end rc
  start=$(date +%s%N)
  echo "gpu-check: $name ..."
  "$@" >"$out/$name.log" 2>&1
  rc=$?
  end=$(date +%s%N)
  local ms=$(((end - start) / 1000000))
  printf '%s\t%s\t%s\n' "$name" "$rc" "$ms" >>"$out/steps.tsv"
  echo "gpu-check: $name: exit $rc, $((ms / 1000)) s"
  if [ "$rc" -ne 0 ]; then
    failed=1
    tail -n 30 "$out/$name.log"
  fi
  return "$rc"
}

summarize() {
  "$DEMON_PYTHON" "$root/scripts/summarize_check.py" "$out" "$mode"
}

if ! step build bash "$root/scripts/build.sh"; then
  summarize
  exit 1
fi

# The test suite; its summary is also printed here.
step tests ctest --test-dir "$DEMON_BUILD_DIR" --output-on-failure --parallel "$jobs" \
  --output-junit "$out/ctest.xml"
sed -n '/tests passed/,$p' "$out/tests.log"

bench=$DEMON_BUILD_DIR/bench
if [ "$mode" = gpu ]; then
  engine_filter=.
  pruner_filter=.
else
  # Width-1 training steps take seconds each on a CPU: the cheap parts only.
  engine_filter='BM_Discover|BM_PruneEvent'
  pruner_filter='BM_PairedSteps/0'
fi
step bench_engine "$bench/bench_engine" --benchmark_filter="$engine_filter" \
  --benchmark_out="$out/bench_engine.json" --benchmark_out_format=json
step bench_pruner "$bench/bench_pruner" --benchmark_filter="$pruner_filter" \
  --benchmark_out="$out/bench_pruner.json" --benchmark_out_format=json

example=$DEMON_BUILD_DIR/examples/resnet18_cifar10/resnet18_cifar10
if [ "$mode" = gpu ]; then
  args=(--config "$root/configs/gpu_check.json")
  if [ -n "${CIFAR10_DIR:-}" ]; then
    args+=(--data-dir "$CIFAR10_DIR")
  fi
else
  args=(--config "$root/configs/smoke.json" --epochs 2 --device cpu)
fi
rm -rf "$out/example_demp" "$out/example_dense"
step example_demp "$example" "${args[@]}" --out "$out/example_demp"
step example_dense "$example" "${args[@]}" --dense --out "$out/example_dense"

# Where a step's time goes, dense against random cuts and against the shape DemP just produced.
rm -f "$out/step_profile.json"
if [ "$mode" = gpu ]; then
  # fp32 (the profile has no autocast), in the example's channels-last layout.
  profile=(--device cuda --widths 1 --ratios 1,0.5,0.25,0.1 --steps 10 --channels-last)
else
  profile=(--device cpu --widths 0.125 --ratios 1,0.5 --steps 2 --batch 64)
fi
step step_profile "$bench/bench_step_profile" "${profile[@]}" --width-multiple 8 \
  --models "$out/example_demp/model_final.pt" --out "$out/step_profile.json"

summarize || failed=1
echo "gpu-check: figures in $out/gpu-check.json"
exit "$failed"
