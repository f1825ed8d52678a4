#pragma once

#include <torch/arg.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "demon/graph.h"

namespace demon {

/// Slices one per-parameter optimizer state in place: calls `slice` on each of its tensors that
/// has the parameter's shape and stores the result. Returns false if it does not know the state
/// type. SGD, Adam, AdamW, RMSprop and Adagrad are built in; a custom optimizer registers its own.
using StateSlicer =
    std::function<bool(torch::optim::OptimizerParamState& state,
                       const std::function<torch::Tensor(const torch::Tensor&)>& slice)>;
void register_state_slicer(StateSlicer slicer);

/// `tensor` restricted to the indices `keep` (ascending) along `dim`, on its device, in its
/// dtype and memory format.
torch::Tensor keep_along(const torch::Tensor& tensor, int64_t dim,
                         const std::vector<int64_t>& keep);

struct PruneOptions {
  /// Every channel group keeps at least this many units (>= 1): a request that would empty a
  /// group keeps its first requested units instead, and says so in PruneResult.
  TORCH_ARG(int64_t, min_width) = 1;
};

struct PruneResult {
  std::vector<int64_t> removed;             ///< unit ids removed
  std::vector<int64_t> kept_for_min_width;  ///< requested but kept to honour min_width
  int64_t parameters_before = 0;            ///< elements of all model parameters in the graph
  int64_t parameters_after = 0;
};

/// Removes `units` (unit ids of `graph`) from the model in place: every parameter, gradient and
/// buffer they own is sliced with set_data (the optimizer and the module still hold the same
/// tensors), the per-parameter state of `optimizer` (if given) is sliced the same way with step
/// counters kept, module options (channels, features, groups) follow the new shapes, and the
/// graph's bookkeeping is updated.
///
/// All new tensors are computed before anything is changed: an error (unknown unit, pinned unit,
/// optimizer state that cannot be sliced) leaves model, optimizer and graph untouched.
PruneResult prune_units(DependencyGraph& graph, const std::vector<int64_t>& units,
                        torch::optim::Optimizer* optimizer = nullptr, PruneOptions options = {});

}  // namespace demon
