#!/usr/bin/env bash
# Data-parallel training on one machine: starts N ranks of a program (the example by default)
# with --world-size N --rank r --store-file F, each with its share of the CPU threads, and waits
# for all of them. When one rank fails, the others are stopped, and its exit code is returned.
#   scripts/launch.sh N [PROGRAM] -- ARGS...
#   scripts/launch.sh 2 -- --config configs/smoke.json --out runs/dp2
# Rank 0 logs and writes --out; rank r's own output goes to OUT/rank<r>.log when --out is given.
# CUDA: each rank takes GPU r (mod the GPUs present) and NCCL; --threads is left alone.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
usage="usage: scripts/launch.sh N [PROGRAM] -- ARGS..."
[[ ${1:-} =~ ^[1-9][0-9]*$ ]] || { echo "$usage" >&2; exit 2; }
world=$1
shift
program=${DEMON_BUILD_DIR:-$root/build}/examples/resnet18_cifar10/resnet18_cifar10
extra=()
if [ "${1:-}" != "--" ] && [ $# -gt 0 ]; then
  program=$1
  shift
else
  extra+=(--bind-addr 127.0.0.1)  # the example: all ranks on this machine, over loopback
fi
[ "${1:-}" = "--" ] && shift
[ -x "$program" ] || { echo "launch: no program at $program (build first: scripts/build.sh)" >&2; exit 2; }

out=""
threads_given=0
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --out) out=${args[i + 1]:-} ;;
    --threads) threads_given=1 ;;
  esac
done
if [ "$threads_given" = 0 ]; then
  threads=$(($(nproc) / world))
  extra+=(--threads $((threads > 0 ? threads : 1)))
fi
store=$(mktemp -u "${TMPDIR:-/tmp}/demon-store.XXXXXX")
logs=${out:-$(mktemp -d)}
mkdir -p "$logs"

pids=()
for ((r = 0; r < world; r++)); do
  if [ "$r" = 0 ]; then
    "$program" "$@" "${extra[@]}" --world-size "$world" --rank 0 --store-file "$store" \
      > >(tee "$logs/rank0.log") 2>&1 &
  else
    "$program" "$@" "${extra[@]}" --world-size "$world" --rank "$r" --store-file "$store" \
      >"$logs/rank$r.log" 2>&1 &
  fi
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null; rm -f "$store"' EXIT

# Wait for each rank as it ends; when one fails, stop the rest.
status=0
running=("${pids[@]}")
while ((${#running[@]} > 0)); do
  finished=""
  wait -n -p finished "${running[@]}"
  code=$?
  still=()
  for pid in "${running[@]}"; do
    [ "$pid" != "$finished" ] && still+=("$pid")
  done
  running=("${still[@]}")
  if [ "$code" != 0 ] && [ "$status" = 0 ]; then
    status=$code
    echo "launch: a rank failed (exit $code); stopping the others (logs: $logs/rank*.log)" >&2
    kill "${running[@]}" 2>/dev/null
  fi
done
exit "$status"
