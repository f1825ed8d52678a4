#!/usr/bin/env bash
# Which PyTorch releases demon works with: for each VERSION, installs that torch from PyPI into its
# own virtual environment under a cache directory, builds demon against its LibTorch (warnings as
# errors), runs the test suite, and prints one line per version.
#
#   scripts/compat.sh [--tests REGEX] [--build-only] [--keep] [--json FILE] VERSION...
#   scripts/compat.sh 2.11.0 2.13.0 2.15.0
#
#   --tests REGEX   run only the tests whose names match REGEX (ctest -R)
#   --build-only    build the library, tests, benchmarks and examples; run nothing
#   --keep          keep each version's environment and build tree (about 5 GB and 1 GB); by
#                   default both are removed once the version is done, so that many versions fit
#   --json FILE     also write the results as a run record (JSON: command, commit, machine,
#                   threads, and one row per version), as docs/data/ keeps them
#
# DEMON_COMPAT_CACHE is the cache directory (default ~/.cache/demon-compat); each version's log is
# kept there as VERSION.log. Exit status: 0 when every version built and passed.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  echo "usage: $0 [--tests REGEX] [--build-only] [--keep] [--json FILE] VERSION..." >&2
  exit 2
}
command_line="scripts/compat.sh $*"
tests=""
json=""
build_only=false
keep=false
versions=()
while [ $# -gt 0 ]; do
  case "$1" in
    --tests)
      [ $# -ge 2 ] || usage
      tests=$2
      shift 2
      ;;
    --build-only) build_only=true && shift ;;
    --keep) keep=true && shift ;;
    --json)
      [ $# -ge 2 ] || usage
      json=$2
      shift 2
      ;;
    -*) usage ;;
    *) versions+=("$1") && shift ;;
  esac
done
((${#versions[@]} > 0)) || usage
for version in "${versions[@]}"; do
  if ! [[ $version =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]]; then
    echo "compat: '$version' is not a release number such as 2.15.0" >&2
    exit 2
  fi
done

cache=${DEMON_COMPAT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/demon-compat}
mkdir -p "$cache"
export DEMON_WARNINGS_AS_ERRORS=ON
jobs=${DEMON_JOBS:-$(nproc)}

# check VERSION: installs, builds and tests one version; its result goes into `line`.
check() {
  local version=$1
  local venv=$cache/venv-$version build=$cache/build-$version log=$cache/$version.log
  local start=$SECONDS
  : >"$log"
  local result="ok" summary="-"
  if ! DEMON_TORCH=pytorch DEMON_PYTORCH_VERSION=$version DEMON_VENV=$venv \
    bash "$root/scripts/setup.sh" >>"$log" 2>&1; then
    result="install failed"
  elif ! DEMON_TORCH=pytorch DEMON_PYTHON=$venv/bin/python DEMON_BUILD_DIR=$build \
    DEMON_JOBS=$jobs bash "$root/scripts/build.sh" >>"$log" 2>&1; then
    result="build failed"
  elif ! $build_only; then
    local filter=()
    [ -n "$tests" ] && filter=(-R "$tests")
    # The export round trip reads exported models with this version's Python.
    DEMON_PYTHON=$venv/bin/python ctest --test-dir "$build" --output-on-failure \
      --parallel "$jobs" "${filter[@]}" >>"$log" 2>&1
    local rc=$?
    summary=$(grep -Eo '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1)
    if [ -z "$summary" ]; then
      result="tests did not run"
      summary="-"
    elif [ "$rc" -ne 0 ]; then
      result="tests failed"
    fi
  fi
  local installed
  installed=$("$venv/bin/python" -c 'import torch; print(torch.__version__)' 2>/dev/null | tail -n 1)
  local seconds=$((SECONDS - start))
  line=$(printf '%-8s %-20s %-16s %-48s %5d s' "$version" "${installed:--}" "$result" "$summary" \
    "$seconds")
  rows+=("$(printf '{"version": "%s", "installed": "%s", "result": "%s", "tests": "%s", "seconds": %d}' \
    "$version" "${installed:--}" "$result" "$summary" "$seconds")")
  if ! $keep; then
    rm -rf "$venv" "$build"
  fi
  [ "$result" = ok ]
}

status=0
lines=()
rows=()
for version in "${versions[@]}"; do
  echo "compat: torch $version (log: $cache/$version.log)"
  if ! check "$version"; then
    status=1
    tail -n 25 "$cache/$version.log"
  fi
  lines+=("$line")
  echo "compat: $line"
done
echo
printf '%-8s %-20s %-16s %-48s %7s\n' version installed result tests time
printf '%s\n' "${lines[@]}"
if [ -n "$json" ]; then
  {
    printf '{"command": "%s",\n "commit": "%s",\n' "$command_line" \
      "$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf ' "machine": "%s, %s cores",\n "threads": %d,\n' \
      "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" "$(nproc)" "$jobs"
    joined=""
    for row in "${rows[@]}"; do
      joined+="${joined:+,$'\n'  }$row"
    done
    printf ' "date": "%s",\n "results": [\n  %s\n ]}\n' "$(date -u +%Y-%m-%d)" "$joined"
  } >"$json"
  echo "compat: record in $json"
fi
exit "$status"
