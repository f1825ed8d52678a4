#pragma once

#include <torch/types.h>

#include <cstdint>

namespace demon::detail {

/// The largest (or smallest) value of `x` per index of `dim`. The dims after `dim` go first: a
/// reduction over contiguous trailing dims, then one over the few leading ones, is several times
/// faster than one reduction over all of them at once. A channels-last activation on the CPU
/// (`dim` innermost in memory) with a channel count that is not a multiple of 32, as pruned
/// layers have, is the exception: there LibTorch's CPU reduction down the channel columns is
/// 10-40x slower than for 32 or 64 channels (bench_pruner's BM_ChannelPeak, [128, 24, 32, 32]:
/// about 4 ms against 0.1 ms, on LibTorch 1.13 and 2.11 alike), so the rows of [N·H, W·C] are
/// reduced first (wide and contiguous), then the W leftover rows of C.
torch::Tensor reduce_to_channels(const torch::Tensor& x, int64_t dim, bool largest);

}  // namespace demon::detail
