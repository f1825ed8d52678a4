#!/usr/bin/env bash
# Kill -9 at random moments: the example is killed with SIGKILL again and again (in training, in
# prune events, in checkpoint writes: wherever the delays land), resumed with --resume each time,
# and must finish exactly like an uninterrupted run (every metric of every epoch, the summary and
# the final weights, bit for bit on CPU). After every kill the checkpoint on disk loads.
# Usage: kill_resume.sh EXAMPLE_BINARY WORK_DIR [SEED]
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tiny_example.sh"
binary=$1 work=$2
RANDOM=${3:-2026}
python=$(command -v python3 || true)
if [ -z "$python" ]; then
  echo "kill_resume: no python3; skipped"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "kill_resume: $*"; exit 1; }
write_tiny_config tiny.json 4 8  # 4 epochs, a prune event every 8 steps
start=$(date +%s.%N)
"$binary" --config tiny.json --out full > full.log 2>&1 || { cat full.log; fail "the full run failed"; }
span=$("$python" -c "import sys; print(max(2.0, float(sys.argv[2]) - float(sys.argv[1])))" \
  "$start" "$(date +%s.%N)")

# Kills land only while a run is alive, and a resumed run has less left to do: on a fast (idle)
# machine a round can finish before three kills landed. Then it starts over with shorter delays.
kills=0
for round in 1 2 3 4; do
  rm -rf part part.log
  kills=0
  scale=$("$python" -c "print(0.5 / 2 ** ($round - 1))")
  for attempt in $(seq 1 12); do
    [ -f part/summary.json ] && break
    "$binary" --config tiny.json --out part --resume >> part.log 2>&1 &
    pid=$!
    # A delay anywhere in the first part of a whole run (startup included): kills land in
    # training, prune events and checkpoint writes, and most runs resumed are killed again.
    delay=$("$python" -c "import sys; print(0.3 + float(sys.argv[3]) * float(sys.argv[1]) * int(sys.argv[2]) / 32768)" \
      "$span" "$RANDOM" "$scale")
    sleep "$delay"
    if kill -9 "$pid" 2>/dev/null; then
      kills=$((kills + 1))
      echo "kill_resume: round $round attempt $attempt killed after ${delay} s" >> part.log
    fi
    wait "$pid" 2>/dev/null || true
    # Whatever was being written, the checkpoint in place is whole.
    if [ -f part/checkpoint.pt ]; then
      "$binary" --config tiny.json --eval-only part/checkpoint.pt --out eval > eval.log 2>&1 ||
        { cat eval.log; fail "after kill $kills the checkpoint does not load"; }
    fi
  done
  [ "$kills" -ge 3 ] && break
  echo "kill_resume: round $round: only $kills kills landed before the run finished; again, with shorter delays"
done
[ "$kills" -ge 3 ] || fail "only $kills kills landed before the run finished, in every round"
if [ ! -f part/summary.json ]; then
  "$binary" --config tiny.json --out part --resume >> part.log 2>&1 || { tail -20 part.log; fail "the last resume failed"; }
fi
# A kill after the last epoch's checkpoint, before the summary: the resume only writes it.
rm -rf tail && cp -r full tail && rm tail/summary.json tail/model_final.pt
"$binary" --config tiny.json --out tail --resume > tail.log 2>&1 || { cat tail.log; fail "resuming a finished run failed"; }
# Same run: metrics of every epoch, reports, summary and weights.
"$python" - full part tail <<'PY' || { tail -30 part.log; exit 1; }
import json, sys
full, part, tail = sys.argv[1], sys.argv[2], sys.argv[3]
def lines(run, name):
    return [json.loads(l) for l in open(f"{run}/{name}")]
timing = {"seconds", "train_seconds", "images_per_second", "eval_seconds", "epoch_seconds", "time"}
def strip(d):
    return {k: v for k, v in d.items() if k not in timing and "second" not in k}
a, b = lines(full, "metrics.jsonl"), lines(part, "metrics.jsonl")
assert len(a) == len(b), f"{len(b)} epochs of metrics, expected {len(a)}"
for e, (x, y) in enumerate(zip(a, b)):
    assert strip(x) == strip(y), f"epoch {e + 1} differs: {strip(x)} vs {strip(y)}"
ra, rb = lines(full, "prune_reports.jsonl"), lines(part, "prune_reports.jsonl")
assert [r["step"] for r in ra] == [r["step"] for r in rb], "prune events differ"
assert [r["units_removed"] for r in ra] == [r["units_removed"] for r in rb], "cuts differ"
sa, sb = json.load(open(f"{full}/summary.json")), json.load(open(f"{part}/summary.json"))
assert strip(sa) == strip(sb), f"summaries differ: {strip(sa)} vs {strip(sb)}"
st = json.load(open(f"{tail}/summary.json"))
assert strip(sa) == strip(st), f"summary after the last checkpoint differs: {strip(sa)} vs {strip(st)}"
wa, wb = open(f"{full}/model_final.pt", "rb").read(), open(f"{part}/model_final.pt", "rb").read()
assert wa == wb, "final weights differ"
assert wa == open(f"{tail}/model_final.pt", "rb").read(), "final weights after the last checkpoint differ"
print(f"kill_resume: {len(a)} epochs, {len(ra)} prune events, summary and weights identical")
PY
echo "kill_resume: OK after $kills kills"
