#!/usr/bin/env bash
# What data parallelism costs per step: the example on synthetic data, N Gloo ranks of one
# thread each on a global batch of N x 64, against one rank of one thread on a batch of 64 (the
# same work per rank). The difference per step is the all-reduces and the waiting for the
# slowest rank. Prints one JSON object per run and a table.
#   bench/data_parallel.sh [N=2] [EPOCHS=2] [WIDTHS="0.125 0.5"]   (needs N cores; build first)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
world=${1:-2}
epochs=${2:-2}
widths=${3:-0.125 0.5}
program=${DEMON_BUILD_DIR:-$root/build}/examples/resnet18_cifar10/resnet18_cifar10
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
common=(--config "$root/configs/smoke.json" --epochs "$epochs" --eval-every 1000 --log-every 1000)

step_ms() {  # mean training time per step over the epochs after the first, in ms
  /usr/bin/python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
steps = [rows[i]["step"] - (rows[i - 1]["step"] if i else 0) for i in range(len(rows))]
rows, steps = (rows[1:], steps[1:]) if len(rows) > 1 else (rows, steps)
print(round(1000 * sum(r["epoch_seconds"] for r in rows) / sum(steps), 2))
PY
}

printf '| width | method | 1 rank, batch 64 (ms/step) | %d ranks, batch %d (ms/step) | overhead |\n' \
  "$world" $((64 * world))
printf '|---|---|---|---|---|\n'
for width in $widths; do
  for method in dense demp; do
    flags=(--width "$width")
    [ "$method" = dense ] && flags+=(--dense)
    "$program" "${common[@]}" "${flags[@]}" --batch-size 64 --threads 1 \
      --out "$work/one" >/dev/null
    bash "$root/scripts/launch.sh" "$world" "$program" -- "${common[@]}" "${flags[@]}" \
      --batch-size $((64 * world)) --threads 1 --bind-addr 127.0.0.1 --out "$work/many" >/dev/null
    one=$(step_ms "$work/one")
    many=$(step_ms "$work/many")
    echo "{\"width\": $width, \"method\": \"$method\", \"ranks\": $world, \"one_rank_ms\": $one, \"ranks_ms\": $many}" >&2
    printf '| %s | %s | %s | %s | %s |\n' "$width" "$method" "$one" "$many" \
      "$(/usr/bin/python3 -c "print(f'{($many - $one) / $one:+.1%}')")"
  done
done
