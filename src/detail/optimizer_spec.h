#pragma once
// Everything demon knows of LibTorch's built-in optimizers, one row each: its family, its
// per-parameter state tensors and how a cut slices them, which of them a step reads, and how a
// checkpoint's saved options are adopted on LibTorch 1.13. Adding an optimizer is adding a row
// (docs/architecture.md, "Adding an optimizer").

#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/types.h>

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "demon/surgery.h"

namespace demon::detail {

/// The state tensors a step reads, by name.
using NeededState = std::vector<std::pair<const char*, torch::Tensor>>;

struct OptimizerSpec {
  const char* name;
  /// Each parameter's step is normalized by its own gradient's magnitude (Adam, AdamW, RMSprop,
  /// Adagrad), so that a scale moves by about the learning rate however large λ grows.
  bool adaptive;
  /// Whether `optimizer` is this optimizer.
  std::function<bool(const torch::optim::Optimizer&)> is;
  /// Slices this optimizer's per-parameter state; false for another optimizer's state.
  StateSlicer slicer;
  /// The state tensors a step with the group's `options` reads (AMSGrad's max_exp_avg_sq,
  /// RMSprop's momentum_buffer and centered grad_avg only when the options use them); nullopt for
  /// another optimizer's state.
  std::function<std::optional<NeededState>(const torch::optim::OptimizerParamState&,
                                           const torch::optim::OptimizerOptions&)>
      needed_state;
  /// After `optimizer.load(archive)`: the group options the archive saved replace the optimizer's
  /// (what 2.x's load does itself); false, changing nothing, for another optimizer, and always on
  /// 2.x.
  std::function<bool(torch::serialize::InputArchive&, torch::optim::Optimizer&)>
      adopt_saved_options;
};

/// SGD, Adam, AdamW, RMSprop and Adagrad.
const std::vector<OptimizerSpec>& builtin_optimizers();

/// The row of `optimizer`, or null for an optimizer demon does not know (a user's own, LBFGS).
const OptimizerSpec* builtin_optimizer(const torch::optim::Optimizer& optimizer);

/// After `optimizer.load(archive)`: the options each parameter group was saved with (learning
/// rate, AMSGrad, momentum …) replace the optimizer's own, as 2.x's load (and PyTorch's
/// load_state_dict) does; 1.13's load keeps the optimizer's, so the built-in optimizers' are read
/// here. Custom optimizers keep theirs on 1.13.
void adopt_saved_options(torch::serialize::InputArchive& archive,
                         torch::optim::Optimizer& optimizer);

}  // namespace demon::detail
