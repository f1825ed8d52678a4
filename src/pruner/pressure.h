#pragma once
// Where λ pushes: a weight per unit, and the per-entry weights of each normalization scale the
// regularizer reads. Pure functions of the graph and the options; DemonPruner refreshes them at
// discovery and after each prune event.

#include <map>
#include <string>
#include <vector>

#include "demon/graph.h"
#include "demon/options.h"
#include "demon/surgery.h"

namespace demon::detail {

/// λ's weight for each unit of `graph` (1: λ as given). Under Pressure::kFlops and kTime, in
/// proportion to what cutting the unit saves, relative to the mean over the prunable units, so
/// that λ keeps its meaning; units that cannot be cut keep 1. With protect_floor, each group's
/// floor (under `cuts`) of strongest units (largest |γ|) gets 0.
std::vector<double> unit_pressure(const DependencyGraph& graph, const DemonOptions& options,
                                  const PruneOptions& cuts);

/// The weight of each entry of each scale tensor named in `scale_names`, from its unit's weight
/// (entries of no unit: 1); empty when every weight is 1, the regularizer's fast path.
std::map<std::string, std::vector<double>> scale_entry_weights(
    const DependencyGraph& graph, const std::vector<double>& unit_weight,
    const std::vector<std::string>& scale_names);

}  // namespace demon::detail
