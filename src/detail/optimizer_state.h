#pragma once

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <functional>

namespace demon::detail {

/// Calls `slice` on each tensor of a per-parameter optimizer state and stores what it returns,
/// through the registered StateSlicers (surgery.h); false when none knows the state's type.
bool slice_optimizer_state(torch::optim::OptimizerParamState& state,
                           const std::function<torch::Tensor(const torch::Tensor&)>& slice);

}  // namespace demon::detail
