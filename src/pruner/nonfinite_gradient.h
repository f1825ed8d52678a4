#pragma once
// Finding a gradient that holds NaN or Inf before the optimizer steps on it.

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <string>

namespace demon::detail {

/// The name of the first parameter of `model` whose gradient holds NaN or Inf ("a parameter
/// outside the model" when only a parameter the optimizer holds from elsewhere does), or empty
/// when every gradient `optimizer` would step on is finite. One host synchronization per device
/// when all are finite.
std::string first_nonfinite_gradient(const torch::optim::Optimizer& optimizer,
                                     torch::nn::Module& model);

}  // namespace demon::detail
