#!/usr/bin/env bash
# demon's own checks throw only demon's exception family (include/demon/errors.h): no bare std
# exceptions and no TORCH_CHECK (c10::Error) in the library's sources and public headers.
set -euo pipefail
root="${1:?usage: errors_lint.sh SOURCE_DIR}"
cd "$root"
if found=$(grep -rnE 'throw std::|TORCH_CHECK|TORCH_INTERNAL_ASSERT' src include); then
  echo "these throw outside demon's exception family (use demon::ValueError, IndexError,"
  echo "StateError or RuntimeError from demon/errors.h):"
  echo "$found"
  exit 1
fi
echo "errors_lint: every throw in src/ and include/ is a demon::Error"
