#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <utility>
#include <vector>

#include "detail/torch_compat.h"

namespace demon::detail {

/// What a cut replaces, kept to put it back: the data and gradient of every parameter and buffer
/// of the model, and the optimizer's per-parameter state. Cheap: a cut builds new tensors and
/// leaves the old ones intact, so the snapshot holds handles to them, not copies. Valid until
/// something modifies those old tensors in place (an optimizer step, a training-mode forward).
class ModelSnapshot {
 public:
  ModelSnapshot(torch::nn::Module& model, torch::optim::Optimizer* optimizer);

  /// Puts every tensor, gradient and optimizer state back, and module options with them.
  void restore();

 private:
  struct Entry {
    torch::Tensor target;  // the model's own tensor (same TensorImpl before and after)
    torch::Tensor data;    // its data when the snapshot was taken
    torch::Tensor grad;
  };
  torch::nn::Module& model_;
  torch::optim::Optimizer* optimizer_;
  std::vector<Entry> entries_;
  std::vector<std::pair<OptimizerStateKey, std::unique_ptr<torch::optim::OptimizerParamState>>>
      states_;
};

}  // namespace demon::detail
