#!/usr/bin/env bash
# A pruned model leaves C++: train the example briefly (synthetic data, DemP prunes), export it,
# check model.json, rebuild it in PyTorch with tools/demon_to_pytorch.py and compare logits
# (< 1e-4).
# Usage: export_roundtrip.sh EXAMPLE_BINARY SOURCE_DIR WORK_DIR
# Exits 77 (ctest: skipped) after the export's own checks when no Python with torch and
# safetensors is found: DEMON_PYTHON, SOURCE_DIR/.venv/bin/python (scripts/setup.sh with
# DEMON_TORCH=pytorch makes it), python3.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tiny_example.sh"
binary=$1 source_dir=$2 work=$3
train_tiny "$binary" "$work"
"$binary" --config tiny.json --export "$work/run/model_final.pt" --out "$work/export" \
  >export.log 2>&1 || { cat export.log; exit 1; }
# The model is pruned (some layer lost units), and model.json carries the run's own accuracy and
# the test set it was measured on: export evaluates nothing.
command -v python3 >/dev/null || { echo "export_roundtrip: no python3; skipped"; exit 77; }
python3 - "$work/export/model.json" "$work/run/summary.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
run = json.load(open(sys.argv[2]))
pruned = [w["layer"] for w in d["widths"] if w["live"] < w["initial"]]
print(f"export_roundtrip: {len(pruned)} of {len(d['widths'])} layers pruned, FLOPs {d['flops_ratio']:.3f}")
ok = bool(pruned)
if d.get("test_accuracy") != run["test_accuracy"] or d.get("test_accuracy_on") != "synthetic":
    print(f"export_roundtrip: model.json says accuracy {d.get('test_accuracy')} on "
          f"{d.get('test_accuracy_on')}, the run {run['test_accuracy']} on synthetic")
    ok = False
sys.exit(0 if ok else 1)
PY
python=""
for candidate in ${DEMON_PYTHON:-} "$source_dir/.venv/bin/python" python3; do
  if [ -n "$candidate" ] && "$candidate" -c 'import torch, safetensors' >/dev/null 2>&1; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "export_roundtrip: no Python with torch and safetensors; the PyTorch rebuild is skipped"
  exit 77
fi
"$python" "$source_dir/tools/demon_to_pytorch.py" "$work/export"
