#pragma once

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <functional>
#include <string>

namespace demon::detail {

/// Calls `slice` on each tensor of a per-parameter optimizer state and stores what it returns,
/// through the registered StateSlicers (surgery.h); false when none knows the state's type.
bool slice_optimizer_state(torch::optim::OptimizerParamState& state,
                           const std::function<torch::Tensor(const torch::Tensor&)>& slice);

/// What keeps a built-in optimizer's per-parameter state from stepping `param`: a tensor that
/// every step reads is missing (LibTorch's load leaves it undefined) or has another dtype than
/// `param`, including the buffers only some of the group's `options` read (AMSGrad's
/// max_exp_avg_sq, RMSprop's momentum_buffer and centered grad_avg). Empty when it can step, and
/// for types demon does not know.
std::string optimizer_state_problem(const torch::optim::OptimizerParamState& state,
                                    const torch::optim::OptimizerOptions& options,
                                    const torch::Tensor& param);

}  // namespace demon::detail
