#!/usr/bin/env bash
# Runs one fuzz target: writes its seed corpus, replays every input it ever failed on (kept in
# fuzz/regressions/<target>/), then fuzzes for DEMON_FUZZ_SECONDS (default 10). A new failing input
# is left in WORK_DIR/artifacts/; copy it into the regressions folder once it is fixed.
#   run_target.sh FUZZ_BINARY REGRESSIONS_DIR WORK_DIR
set -euo pipefail
binary=$1
regressions=$2
work=$3
seconds=${DEMON_FUZZ_SECONDS:-10}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$work/corpus" "$work/artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/scripts/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1

DEMON_FUZZ_SEEDS="$work/seeds" "$binary"
if compgen -G "$regressions/*" >/dev/null; then
  echo "fuzz: replaying $(ls "$regressions" | wc -l) kept inputs from $regressions"
  "$binary" -runs=1 "$regressions"/*
fi
# Memory and time per input are bounded: an unbounded allocation or a hang is a failure too.
set +e
"$binary" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=6144 -malloc_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" "$work/seeds" \
  >"$work/log.txt" 2>&1
status=$?
set -e
# The log without libFuzzer's progress lines; the whole of it is in WORK_DIR/log.txt.
grep -vE '^#[0-9]+.*(NEW|REDUCE|pulse|RELOAD)' "$work/log.txt" | tail -n 60 || true
exit "$status"
