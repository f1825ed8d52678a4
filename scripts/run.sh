#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, then train ResNet-18
# with Demon Pruning and plot the run. Without --data-dir it uses a synthetic CIFAR-shaped set
# (a few minutes on 2 CPU cores); pass --data-dir DIR for real CIFAR-10. Other arguments go to
# the program (try --help); --config and --out default to configs/demo.json and runs/demo.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
bin="${DEMON_BUILD_DIR:-$root/build}/examples/resnet18_cifar10"

args=("$@")
out="$root/runs/demo"
has_config=false
for ((i = 0; i < ${#args[@]}; ++i)); do
  case "${args[i]}" in
    --config|--config=*) has_config=true ;;
    --out) out="${args[i + 1]:-$out}" ;;
    --out=*) out="${args[i]#--out=}" ;;
    --help|-h|--eval-only|--eval-only=*) exec "$bin/resnet18_cifar10" "${args[@]}" ;;
  esac
done
defaults=()
$has_config || defaults+=(--config "$root/configs/demo.json")
[[ " ${args[*]} " == *" --out "* || " ${args[*]} " == *" --out="* ]] || defaults+=(--out "$out")

"$bin/resnet18_cifar10" "${defaults[@]}" "${args[@]}"
if [ -f "$out/metrics.jsonl" ]; then
  "$bin/demon_plot" "$out/metrics.jsonl" --title "demon: ResNet-18 with Demon Pruning"
fi
