#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, and run the example.
# Arguments are passed to the example program (try --help).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh"
exec "${DEMON_BUILD_DIR:-$root/build}/examples/quickstart/demon_quickstart" "$@"
