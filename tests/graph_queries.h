#pragma once

// Queries on a discovered graph for the graph tests: discovery on a test model's example input,
// the tensors on a group's axes, the unit of each index of an axis, a group's prunable units.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "demon/graph.h"

namespace demon::testing {

template <typename Model>
DependencyGraph discover(Model& model, const DiscoveryOptions& options = {}) {
  torch::manual_seed(0);
  return DependencyGraph::discover(*model, model->forward(model->example_input(4)), options);
}

// Names of the tensors on the group's axes, as "name[dim]".
inline std::set<std::string> axis_names(const DependencyGraph& graph,
                                        const demon::ChannelGroup& group) {
  std::set<std::string> names;
  for (int a : group.axes) {
    const auto& axis = graph.axes()[a];
    names.insert(axis.tensor >= 0
                     ? graph.tensors()[axis.tensor].name + "[" + std::to_string(axis.dim) + "]"
                     : graph.layers()[axis.layer].name + (axis.dim == 0 ? "(in)" : "(out)"));
  }
  return names;
}

// The unit of each index of axis `dim` of the tensor `name` (empty if it is not an axis).
inline std::vector<int64_t> owners_of(const DependencyGraph& graph, const std::string& name,
                                      int64_t dim) {
  const int tensor = graph.find_tensor(name);
  for (const auto& axis : graph.axes()) {
    if (tensor >= 0 && axis.tensor == tensor && axis.dim == dim)
      return axis.owner;
  }
  return {};
}

inline int64_t prunable_in(const DependencyGraph& graph, const demon::ChannelGroup& group) {
  return std::count_if(group.units.begin(), group.units.end(),
                       [&](int64_t u) { return graph.prunable(u); });
}

}  // namespace demon::testing
