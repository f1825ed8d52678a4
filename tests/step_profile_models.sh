#!/usr/bin/env bash
# bench_step_profile --models times the shape DemP produced: train the example briefly (synthetic
# data, DemP prunes), profile its final model beside the dense one and a random cut, and check
# that the profile saw the model the run ended with (its FLOPs ratio and parameters); a checkpoint
# of another width is refused with the width named.
# Usage: step_profile_models.sh EXAMPLE_BINARY BENCH_BINARY WORK_DIR
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tiny_example.sh"
example=$1 bench=$2 work=$3
train_tiny "$example" "$work"
"$bench" --widths 0.125 --ratios 1,0.5 --steps 1 --threads 1 --batch 32 \
  --models "$work/run/model_final.pt" --out "$work/profile.json"

# The run's summary and the profile's last row must describe the same model.
read_field() { sed -n "s/^  \"$2\": \([0-9.e+-]*\),\{0,1\}$/\1/p" "$1" | head -n 1; }
run_flops=$(read_field "$work/run/summary.json" flops_ratio)
run_parameters=$(read_field "$work/run/summary.json" parameters)
row=$(tr -d ' \n' <"$work/profile.json" | grep -o '{[^{}]*"model":"[^"]*model_final.pt"[^{}]*}') ||
  { echo "no row for model_final.pt in the profile"; cat "$work/profile.json"; exit 1; }
profile_flops=$(echo "$row" | grep -o '"flops_ratio":[0-9.e+-]*' | cut -d: -f2)
profile_parameters=$(echo "$row" | grep -o '"parameters":[0-9]*' | cut -d: -f2)
echo "step_profile_models: run FLOPs $run_flops, $run_parameters parameters;" \
  "profiled FLOPs $profile_flops, $profile_parameters parameters"
awk -v a="$run_flops" -v b="$profile_flops" 'BEGIN { d = a - b; exit !(a < 1 && (d < 0 ? -d : d) < 1e-9) }' ||
  { echo "FLOPs ratios differ (or the run did not prune)"; exit 1; }
[ "$run_parameters" = "$profile_parameters" ] || { echo "parameter counts differ"; exit 1; }

# The same checkpoint at another width: refused, naming both widths.
if "$bench" --widths 0.25 --ratios 1 --steps 1 --threads 1 --batch 32 \
  --models "$work/run/model_final.pt" >"$work/wrong.log" 2>&1; then
  echo "a width-1/8 checkpoint was accepted at width 1/4"
  exit 1
fi
grep -q "width 0.125" "$work/wrong.log" || { cat "$work/wrong.log"; exit 1; }
echo "step_profile_models: passed"
