#pragma once

// Which rule interprets which autograd op. One row per op name; a few families are matched by
// part of their name (every "...Pool...", "...BatchNorm..."). Torch-free.

#include <string>
#include <vector>

#include "graph/rules/rules.h"

namespace demon::detail {

/// The rule for op `op` ("Add" for AddBackward0). Names in `user_elementwise` (from
/// DiscoveryOptions::elementwise_op) are per-element ops; an op nobody knows gets rules::unknown.
/// Activations are recognized by the walker from the node's type before this table.
Rule find_rule(const std::string& op, const std::vector<std::string>& user_elementwise = {});

/// Every op name with a row of its own (not the families matched by part of their name), sorted.
std::vector<std::string> known_ops();

}  // namespace demon::detail
