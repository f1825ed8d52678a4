#!/usr/bin/env bash
# A full disk in the middle of a run: the example stops with an error that says so, the last good
# checkpoint is intact and loads, no temporary file is left, and the run resumes once there is
# room. Needs a small tmpfs (root with mount rights); skipped (77) elsewhere.
# Usage: disk_full.sh EXAMPLE_BINARY WORK_DIR
set -euo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tiny_example.sh"
binary=$1 work=$2
rm -rf "$work" && mkdir -p "$work/disk" && cd "$work"
if ! mount -t tmpfs -o size=6M tmpfs "$work/disk" 2>/dev/null; then
  echo "disk_full: cannot mount a small tmpfs here; skipped"
  exit 77
fi
trap 'umount "$work/disk" 2>/dev/null || true' EXIT
fail() { echo "disk_full: $*"; exit 1; }
write_tiny_config tiny.json 3 8
run=disk/run
"$binary" --config tiny.json --out $run --stop-after 1 > first.log 2>&1 || { cat first.log; fail "epoch 1 failed"; }
before=$(cksum < $run/checkpoint.pt)
# Leave 200 KiB: the next checkpoint (about 2 MB, written beside the old one) cannot be written.
avail=$(df -k --output=avail disk | tail -1)
dd if=/dev/zero of=disk/filler bs=1k count=$((avail - 200)) status=none 2>/dev/null || true
set +e
"$binary" --config tiny.json --out $run --resume > full.log 2>&1
rc=$?
set -e
[ "$rc" -ne 0 ] || fail "the run did not notice the full disk"
[ "$rc" -lt 128 ] || { tail -5 full.log; fail "the run crashed (exit $rc) instead of stopping with an error"; }
grep -q "No space left on device" full.log || { tail -5 full.log; fail "the error does not say why"; }
[ "$(cksum < $run/checkpoint.pt)" = "$before" ] || fail "the last good checkpoint changed"
ls $run/*.tmp* >/dev/null 2>&1 && fail "temporary files left: $(ls $run)"
"$binary" --config tiny.json --eval-only $run/checkpoint.pt --out eval > eval.log 2>&1 ||
  { cat eval.log; fail "the last good checkpoint does not load"; }
rm disk/filler
"$binary" --config tiny.json --out $run --resume > resumed.log 2>&1 || { tail -5 resumed.log; fail "resume failed"; }
[ -f $run/summary.json ] || fail "no summary after the resume"
echo "disk_full: stopped with: $(grep -o 'cannot write.*' full.log | head -1)"
echo "disk_full: OK"
