#pragma once

// Helpers for tests that discover graphs, plant dead units and check function preservation.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "demon/graph.h"

namespace demon::testing {

/// The group whose name starts with `name`, or fails the test.
inline const ChannelGroup& group_named(const DependencyGraph& graph, const std::string& name) {
  for (const auto& group : graph.groups()) {
    if (group.name.rfind(name, 0) == 0)
      return group;
  }
  ADD_FAILURE() << "no group named " << name << "\n" << graph;
  static ChannelGroup none;
  return none;
}

/// The `position`-th unit (in channel order) of the group named `name`.
inline int64_t unit_of(const DependencyGraph& graph, const std::string& name, size_t position) {
  const auto& group = group_named(graph, name);
  EXPECT_LT(position, group.units.size()) << name;
  return position < group.units.size() ? group.units[position] : -1;
}

inline bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// Makes `unit` dead: on every normalization layer of its group, scale 0 and shift -1000 on the
/// unit's channels (the following activation outputs exactly 0 in train and eval mode). Without
/// a normalization scale, the producing layer's rows become 0 and its bias -30 (ReLU and GELU
/// both give exactly 0 there in float), and running means 0.
inline void plant_dead(const DependencyGraph& graph, int64_t unit) {
  torch::NoGradGuard no_grad;
  const auto& group = graph.groups()[graph.units()[unit].group];
  bool normalized = false;
  for (int a : group.axes) {
    const auto& axis = graph.axes()[a];
    if (axis.tensor < 0)
      continue;
    const auto& tensor = graph.tensors()[axis.tensor];
    torch::Tensor data = tensor.tensor;  // a handle to the model's own tensor
    const int layer = tensor.layer;
    if (layer < 0)
      continue;
    const auto kind = graph.layers()[layer].kind;
    if ((kind == LayerKind::kBatchNorm || kind == LayerKind::kGroupNorm ||
         kind == LayerKind::kInstanceNorm) &&
        axis.dim == 0) {
      for (size_t i = 0; i < axis.owner.size(); ++i) {
        if (axis.owner[i] != unit)
          continue;
        if (ends_with(tensor.name, ".weight")) {
          data.index_put_({static_cast<int64_t>(i)}, 0.0);
          normalized = true;
        }
        if (ends_with(tensor.name, ".bias")) {
          data.index_put_({static_cast<int64_t>(i)}, -1000.0);
          normalized = true;
        }
      }
    }
  }
  if (normalized)
    return;
  for (int a : group.axes) {
    const auto& axis = graph.axes()[a];
    if (axis.tensor < 0 || axis.dim != 0)
      continue;
    const auto& tensor = graph.tensors()[axis.tensor];
    torch::Tensor data = tensor.tensor;
    for (size_t i = 0; i < axis.owner.size(); ++i) {
      if (axis.owner[i] != unit)
        continue;
      if (!tensor.is_parameter) {
        // A norm without affine parameters: zeros stay zeros in eval mode too (running_var
        // stays positive).
        if (ends_with(tensor.name, ".running_mean"))
          data.index_put_({static_cast<int64_t>(i)}, 0.0);
        continue;
      }
      if (data.dim() >= 2)
        data[static_cast<int64_t>(i)].zero_();
      if (data.dim() == 1)
        data.index_put_({static_cast<int64_t>(i)}, -30.0);
    }
  }
}

inline int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters())
    n += p.numel();
  return n;
}

/// Outputs of `forward` in train and in eval mode, without changing BatchNorm running stats.
template <typename Model>
std::pair<torch::Tensor, torch::Tensor> outputs_train_eval(Model& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> saved;
  for (const auto& b : model->buffers())
    saved.push_back(b.clone());
  model->train();
  auto train = model->forward(x);
  size_t i = 0;
  for (auto& b : model->buffers())
    b.copy_(saved[i++]);
  model->eval();
  auto eval = model->forward(x);
  model->train();
  return {train, eval};
}

/// outputs_train_eval, computed in double precision from the model's own weights, which get their
/// dtype back exactly afterwards (float -> double -> float is exact). Comparing a trained float
/// model before and after a cut this way leaves only double rounding between the two, whichever
/// kernels the CPU picks for the old and the new channel counts.
template <typename Model>
std::pair<torch::Tensor, torch::Tensor> outputs_train_eval_in_double(Model& model,
                                                                     const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<torch::Tensor, c10::ScalarType>> converted;
  for (const auto& tensors : {model->parameters(), model->buffers()}) {
    for (const auto& t : tensors) {
      if (t.is_floating_point()) {
        converted.emplace_back(t, t.scalar_type());
        torch::Tensor handle = t;
        handle.set_data(t.to(torch::kDouble));
      }
    }
  }
  auto result = outputs_train_eval(model, x.to(torch::kDouble));
  for (auto& [t, dtype] : converted)
    t.set_data(t.to(dtype));
  return result;
}

}  // namespace demon::testing
