#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include "demon/graph.h"

namespace demon::detail {

/// Walks the autograd graph from `root` in forward order, hands each op to its rule (op_table),
/// and assembles what the rules recorded into a DependencyGraph.
DependencyGraph build_graph(torch::nn::Module& model, const torch::Tensor& root,
                            const DiscoveryOptions& options);

}  // namespace demon::detail
