#pragma once

#include <torch/arg.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "demon/graph.h"
#include "demon/options.h"

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

/// How far a cut may shrink each channel group. A request that goes below a floor keeps its first
/// requested units (in channel order) instead, and says so in PruneResult::kept_by_floor; the
/// units kept are left exactly as they were.
struct PruneOptions {
  /// Every channel group keeps at least this many units (>= 1).
  TORCH_ARG(int64_t, min_width) = 1;
  /// Floors of single groups by name, over min_width.
  TORCH_ARG(GroupWidths, group_min_width) = {};
  /// ... and at least this fraction of its initial width, rounded up (0 to 1).
  TORCH_ARG(double, min_width_fraction) = 0.0;
  /// Each group's width after the cut is rounded up to a multiple of this (>= 1), by keeping
  /// some of the units asked for. Keeping a dead unit changes no output, and channel counts that
  /// are multiples of 8 or 16 suit vectorized CPU kernels and tensor cores better.
  TORCH_ARG(int64_t, width_multiple) = 1;
};

/// The smallest width `options` allow a group named `name`, initially `initial_width` units.
int64_t group_floor(const std::string& name, int64_t initial_width, const PruneOptions& options);

/// The width a group of `width` units (initially `initial_width`) has after a request to remove
/// `requested` of them, under the floors of `options`.
int64_t group_width_after(int64_t width, int64_t requested, int64_t initial_width,
                          const PruneOptions& options, const std::string& name = "");

struct PruneResult {
  std::vector<int64_t> removed;        ///< unit ids removed
  std::vector<int64_t> kept_by_floor;  ///< requested but kept by a floor of PruneOptions
  int64_t parameters_before = 0;       ///< elements of all model parameters in the graph
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
