#!/usr/bin/env bash
# Data-parallel DemP on one machine: N ranks of tests/distributed_worker, Gloo over loopback.
#   distributed.sh WORKER WORK_DIR
# Exits 77 (skipped) when demon was built without Gloo.
set -uo pipefail
worker=$1
work=$2
rm -rf "$work"
mkdir -p "$work"

# run_ranks NAME WORLD [timeout] [store]: starts WORLD ranks, waits for all; their exit codes in
# $codes. The store: a fresh file by default, or tcp:PORT.
run_ranks() {
  local name=$1 world=$2 limit=${3:-300}
  local store=${4:-$work/$name.store} pids=()
  rm -f "$work/$name.store"
  for ((r = 0; r < world; r++)); do
    timeout "$limit" "$worker" "$name" "$r" "$world" "$store" >"$work/$name.$world.$r.log" 2>&1 &
    pids+=($!)
  done
  codes=()
  for pid in "${pids[@]}"; do
    wait "$pid"
    codes+=($?)
  done
  cat "$work/$name.$world".*.log
}

run_ranks train 1 60 >/dev/null
if grep -q "SKIP" "$work/train.1.0.log"; then
  echo "skipped: demon was built without Gloo"
  exit 77
fi
failed=0

echo "=== train: 2 ranks, prune events, replicas compared after each"
run_ranks train 2
[ "${codes[*]}" = "0 0" ] || { echo "FAIL: train exit codes ${codes[*]}"; failed=1; }

echo "=== one_alive: a unit active on rank 1's data only"
run_ranks one_alive 2
[ "${codes[*]}" = "0 0" ] || { echo "FAIL: one_alive exit codes ${codes[*]}"; failed=1; }
echo "=== one_alive again, the ranks meeting through rank 0's TCP store"
run_ranks one_alive 2 120 "tcp:$((20000 + RANDOM % 20000))"
[ "${codes[*]}" = "0 0" ] || { echo "FAIL: one_alive over TCP exit codes ${codes[*]}"; failed=1; }
echo "=== one_alive, control: one rank, rank 0's data only"
run_ranks one_alive 1
[ "${codes[*]}" = "0" ] || { echo "FAIL: one_alive control exit code ${codes[*]}"; failed=1; }

echo "=== die: rank 1 exits at step 5; rank 0 must fail with demon's error, not hang"
start=$(date +%s)
run_ranks die 2 120
elapsed=$(($(date +%s) - start))
echo "rank 0 ended after ${elapsed} s with exit code ${codes[0]}"
if [ "${codes[0]}" != 3 ] || ! grep -q "the data-parallel .* failed on rank 0 of 2" "$work/die.2.0.log"; then
  echo "FAIL: rank 0 did not end with demon's error (exit ${codes[0]}; 124 is a hang)"
  failed=1
fi
[ "${codes[1]}" = 9 ] || { echo "FAIL: rank 1 exit code ${codes[1]}"; failed=1; }

[ "$failed" = 0 ] && echo "distributed: all scenarios passed"
exit "$failed"
