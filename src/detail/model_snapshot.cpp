#include "detail/model_snapshot.h"

#include "detail/module_tree.h"
#include "layers/layer_spec.h"

namespace demon::detail {

ModelSnapshot::ModelSnapshot(torch::nn::Module& model, torch::optim::Optimizer* optimizer)
    : model_(model), optimizer_(optimizer) {
  auto keep = [&](const torch::Tensor& tensor) {
    entries_.push_back({tensor, tensor.variable_data(), tensor.grad()});
  };
  for (const auto& item : model.named_parameters()) {
    keep(item.value());
  }
  for (const auto& item : model.named_buffers()) {
    keep(item.value());
  }
  if (optimizer_ != nullptr) {
    for (const auto& [key, state] : optimizer_->state()) {
      // clone() copies the state's tensor handles: the tensors a cut slices stay as they are.
      states_.emplace_back(key, state->clone());
    }
  }
}

void ModelSnapshot::restore() {
  torch::NoGradGuard no_grad;
  for (auto& entry : entries_) {
    set_data_of_new_shape(entry.target, entry.data);
    if (entry.target.requires_grad() || entry.grad.defined()) {
      entry.target.mutable_grad() = entry.grad;
    }
  }
  if (optimizer_ != nullptr) {
    auto& states = optimizer_->state();
    states.clear();
    for (auto& [key, state] : states_) {
      states[key] = state->clone();
    }
  }
  for (const auto& [name, module] : named_modules_of(model_)) {
    sync_module_options(*module);
  }
}

}  // namespace demon::detail
