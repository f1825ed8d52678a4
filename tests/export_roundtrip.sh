#!/usr/bin/env bash
# A pruned model leaves C++: train the example briefly (synthetic data, DemP prunes), export it,
# rebuild it in PyTorch with tools/demon_to_pytorch.py and compare logits (< 1e-4).
# Usage: export_roundtrip.sh EXAMPLE_BINARY SOURCE_DIR WORK_DIR
# Exits 77 (ctest: skipped) when no Python with torch and safetensors is found: DEMON_PYTHON,
# SOURCE_DIR/.venv/bin/python (scripts/setup.sh with DEMON_TORCH=pytorch makes it), python3.
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tiny_example.sh"
binary=$1 source_dir=$2 work=$3
python=""
for candidate in ${DEMON_PYTHON:-} "$source_dir/.venv/bin/python" python3; do
  if [ -n "$candidate" ] && "$candidate" -c 'import torch, safetensors' >/dev/null 2>&1; then
    python=$candidate
    break
  fi
done
if [ -z "$python" ]; then
  echo "export_roundtrip: no Python with torch and safetensors; skipped"
  exit 77
fi
train_tiny "$binary" "$work"
"$binary" --config tiny.json --export "$work/run/model_final.pt" --out "$work/export"
# The test is about a pruned model: some layer must have lost units.
"$python" - "$work/export/model.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
pruned = [w["layer"] for w in d["widths"] if w["live"] < w["initial"]]
print(f"export_roundtrip: {len(pruned)} of {len(d['widths'])} layers pruned, FLOPs {d['flops_ratio']:.3f}")
sys.exit(0 if pruned else 1)
PY
"$python" "$source_dir/tools/demon_to_pytorch.py" "$work/export"
