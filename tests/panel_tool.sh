#!/usr/bin/env bash
# bench_panel through tools/panel.py on synthetic data: a two-model grid runs two at a time, each
# run appends one row with its command and metrics, a second `run` finds nothing to do, and the
# table renders every configuration.
# Usage: panel_tool.sh SOURCE_DIR BENCH_PANEL WORK_DIR
set -euo pipefail
source_dir=$1 program=$2 work=$3
python=$(command -v python3 || true)
if [ -z "$python" ]; then
  echo "panel_tool: no python3; skipped"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work"
cat > spec.json <<JSON
{
  "program": "$program",
  "records": "$work/rows.jsonl",
  "logs": "$work/logs",
  "tasks": {"small": 2},
  "models": ["mlp", "quickstart"],
  "configs": {"dense": {"mode": "dense"}, "default": {"mode": "demp"},
              "target": {"demon": {"target": 0.5, "prune_every": 5}}}
}
JSON
"$python" "$source_dir/tools/panel.py" spec.json run --jobs 2 | tee run.log
[ "$(wc -l < rows.jsonl)" -eq 6 ] || { echo "panel_tool: expected 6 rows"; cat rows.jsonl; exit 1; }
"$python" - <<'PY'
import json
rows = [json.loads(line) for line in open("rows.jsonl")]
for row in rows:
    for key in ("command", "model", "task", "label", "seed", "test_accuracy", "flops_ratio",
                "mean_flops_ratio", "chance_epochs", "test_accuracy_by_epoch", "demon"):
        assert key in row, (key, row)
    assert len(row["test_accuracy_by_epoch"]) == 2, row
    assert row["data"] == "synthetic", row
    if row["label"] == "dense":
        assert row["flops_ratio"] == 1.0 and row["prune_events"] == 0, row
        assert row["demon"]["regularizer"] == "none", row
    else:
        assert row["lambda_peak"] > 0, row
        assert row["demon"]["lambda_peak"] == "auto", row
    if row["label"] == "target":
        assert row["demon"]["target"] == 0.5, row
print("panel_tool: rows ok")
PY
"$python" "$source_dir/tools/panel.py" spec.json run --jobs 2 | grep -q "0 runs to do"
"$python" "$source_dir/tools/panel.py" spec.json table > table.md
cat table.md
[ "$(grep -c "^| small" table.md)" -eq 6 ]
grep -q "| target |" table.md
