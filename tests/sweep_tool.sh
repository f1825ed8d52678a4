#!/usr/bin/env bash
# tools/sweep.py on a stand-in program: runs a grid, resumes without redoing finished runs,
# restricts with --only and --shard, collects CSV/JSON and prints the Markdown table.
# Usage: sweep_tool.sh SOURCE_DIR WORK_DIR
set -euo pipefail
source_dir=$1 work=$2
python=$(command -v python3 || true)
if [ -z "$python" ]; then
  echo "sweep_tool: no python3; skipped"
  exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work"
# The stand-in: records its call, writes config.json and summary.json into --out.
cat > program.py <<'PY'
import json, os, sys
args = sys.argv[1:]
out = args[args.index("--out") + 1]
seed = int(args[args.index("--seed") + 1])
lam = float(args[args.index("--lambda") + 1]) if "--lambda" in args else None
with open("calls.log", "a") as log:
    log.write(out + "\n")
os.makedirs(out, exist_ok=True)
json.dump({"dense": lam is None, "width": 0.125, "demon": {"lambda_peak": lam}},
          open(os.path.join(out, "config.json"), "w"))
if os.environ.get("FAIL_ON") == out:
    sys.exit(3)
json.dump({"test_accuracy": 0.5 + seed / 100, "parameters": 1000, "flops_ratio": 1 - (lam or 0),
           "initial_flops": 4e6,
           "mean_flops_ratio": 1.0, "train_seconds": 10.0 + seed},
          open(os.path.join(out, "summary.json"), "w"))
PY
cat > spec.json <<JSON
{"program": "$python", "common": ["program.py"], "out": "out", "seeds": [0, 1],
 "runs": {"dense": [], "demp": ["--lambda", "0.5"]}}
JSON
sweep() { "$python" "$source_dir/tools/sweep.py" spec.json "$@"; }
fail() { echo "sweep_tool: $*"; exit 1; }

# A failed run is reported (exit 1) and left unfinished; the others finish.
FAIL_ON=out/demp/seed_1 sweep run >run1.txt 2>&1 && fail "a failed run did not fail the sweep"
[ "$(wc -l < calls.log)" -eq 4 ] || fail "expected 4 calls, got $(wc -l < calls.log)"
# Resuming redoes only the unfinished run, with --resume.
sweep run >run2.txt 2>&1 || fail "resume failed: $(cat run2.txt)"
[ "$(wc -l < calls.log)" -eq 5 ] || fail "resume redid finished runs: $(cat calls.log)"
[ "$(tail -1 calls.log)" = "out/demp/seed_1" ] || fail "resume ran $(tail -1 calls.log)"
grep -q -- "--resume" <(sweep list) || fail "list lacks --resume"
# list: --only and --shard select runs.
[ "$(sweep list | wc -l)" -eq 4 ] || fail "list: expected 4 commands"
[ "$(sweep list --only demp | grep -c 'out/demp/')" -eq 2 ] || fail "--only demp"
sweep list --only nope >/dev/null 2>&1 && fail "--only accepted an unknown run"
[ "$(sweep run --shard 1/2 2>&1 | grep -c 'runs finished, 0 to go')" -eq 1 ] || fail "--shard"
# collect: one row per finished run, with kinds; table: mean ± sd over seeds.
sweep collect 2>/dev/null
[ "$(wc -l < out/results.csv)" -eq 5 ] || fail "results.csv: $(cat out/results.csv)"
grep -q '"kind": "dense"' out/results.json || fail "no dense kind in results.json"
sweep table 2>/dev/null > table.md
grep -qF '| demp | demp | 2 | 50.50 ± 0.71 | 50.00 (seed 0) / 51.00 (seed 1) | 1000 ± 0 | 2.00 ± 0.00 | 4.00 ± 0.00 | - / - | - / - |' table.md ||
  fail "table: $(cat table.md)"
# table and check from a records file: check passes on the rendered table and fails on another.
cp out/results.json records.json
sweep table --records records.json > records_table.md 2>/dev/null
grep -qF '| dense | dense | 2 |' records_table.md || fail "table --records: $(cat records_table.md)"
{ echo "text"; echo "<!-- records.json begin -->"; cat records_table.md
  echo "<!-- records.json end -->"; } > doc.md
sweep check --records records.json --doc doc.md >/dev/null 2>&1 || fail "check failed on its table"
sed -i 's/50.50 ± 0.71/50.60 ± 0.71/' doc.md
sweep check --records records.json --doc doc.md >/dev/null 2>&1 && fail "check passed a changed table"
sweep check --records records.json --doc table.md >/dev/null 2>&1 && fail "check passed no markers"

# A run with a program of its own (a peer tool): its command, its kind from its summary.
cat > peer.py <<'PY'
import json, os, sys
args = sys.argv[1:]
assert "--resume" in args and "--ratio" in args and "program.py" not in args, args
out = args[args.index("--out") + 1]
os.makedirs(out, exist_ok=True)
json.dump({"baseline": "peer", "config": {"width": 0.125, "demon": {"lambda_peak": 9}},
           "test_accuracy": 0.4, "parameters": 500, "flops_ratio": 0.5, "initial_flops": 4e6,
           "mean_flops_ratio": 0.75}, open(os.path.join(out, "summary.json"), "w"))
PY
cat > peer_spec.json <<JSON
{"program": "$python", "common": ["program.py"], "out": "out", "seeds": [0, 1],
 "runs": {"dense": [], "peer": {"program": ["$python", "peer.py"], "common": [],
                                "args": ["--ratio", "0.5"]}}}
JSON
"$python" "$source_dir/tools/sweep.py" peer_spec.json list > peer_list.txt
grep -q "peer.py --ratio 0.5 --seed 0" peer_list.txt || fail "peer list: $(cat peer_list.txt)"
"$python" "$source_dir/tools/sweep.py" peer_spec.json run >peer_run.txt 2>&1 ||
  fail "peer run: $(cat peer_run.txt)"
"$python" "$source_dir/tools/sweep.py" peer_spec.json table 2>/dev/null > peer_table.md
grep -qF '| peer | peer | 2 | 40.00 ± 0.00 |' peer_table.md || fail "peer table: $(cat peer_table.md)"
grep -q '"lambda_peak": 9' out/results.json && fail "a peer's row took demon's lambda_peak"
echo '{"program": "x", "out": "o", "runs": {"r": {"argz": []}}}' > bad_spec.json
"$python" "$source_dir/tools/sweep.py" bad_spec.json list >bad.txt 2>&1 && fail "an unknown run key passed"
grep -q 'unknown keys' bad.txt || fail "bad spec: $(cat bad.txt)"
echo "sweep_tool: OK"
