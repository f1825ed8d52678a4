#!/usr/bin/env bash
# The public headers and the example stay on the public API: no demon::detail name, no private
# header (src/detail/), and no LibTorch version test outside the one public name that needs it
# (demon::ProcessGroup, in include/demon/data_parallel_options.h).
set -euo pipefail
root="${1:?usage: public_api_lint.sh SOURCE_DIR}"
cd "$root"
status=0
if found=$(grep -rnE 'detail::|[<"](demon/)?detail/' include examples \
  | grep -vE '^[^:]+:[0-9]+:\s*//' | grep -v '^examples/common/'); then
  echo "public headers or the example reach demon's internals:"
  echo "$found"
  status=1
fi
if found=$(grep -rn 'TORCH_VERSION' include | grep -v '^include/demon/data_parallel_options.h:'); then
  echo "LibTorch version tests belong in src/detail/torch_compat.h:"
  echo "$found"
  status=1
fi
[ "$status" -eq 0 ] && echo "public_api_lint: include/ and examples/ use the public API only"
exit "$status"
