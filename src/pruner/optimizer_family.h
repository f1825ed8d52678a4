#pragma once
// What DemonPruner needs to know about the optimizer it steps: which parameters it holds, which
// family it belongs to, and which optimizers it cannot drive.

#include <torch/optim/optimizer.h>

#include <vector>

namespace demon::detail {

/// Every parameter of every group of `optimizer`, in order.
std::vector<torch::Tensor> optimizer_params(const torch::optim::Optimizer& optimizer);

/// Adam, AdamW, RMSprop and Adagrad: each parameter's step is normalized by its own gradient's
/// magnitude, so that a scale moves by about the learning rate however large λ grows.
bool is_adaptive(const torch::optim::Optimizer& optimizer);

/// Throws ValueError for an optimizer DemonPruner cannot drive (LBFGS: a closure per step, and a
/// flat history no cut can slice).
void require_supported(const torch::optim::Optimizer& optimizer);

}  // namespace demon::detail
