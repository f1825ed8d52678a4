# The PyTorch releases demon is tested against, pinned in this one place and bumped deliberately.
# Sourced by setup.sh, compat.sh and .ci/run.
# shellcheck shell=bash

# The newest 2.x release on PyPI: the default of `DEMON_TORCH=pytorch scripts/setup.sh`, and the
# release CI runs the whole suite, the benchmarks and the example against.
DEMON_PYTORCH_NEWEST=${DEMON_PYTORCH_NEWEST:-2.15.0}

# The release installed on the GPU machine: CI builds the library and runs the suite against it
# too, so that what gpu-check.sh builds there is known to compile.
DEMON_PYTORCH_GPU=${DEMON_PYTORCH_GPU:-2.11.0}
