#include "pruner/pressure.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "demon/criterion.h"

namespace demon::detail {

std::vector<double> unit_pressure(const DependencyGraph& graph, const DemonOptions& options,
                                  const PruneOptions& cuts) {
  const auto& units = graph.units();
  std::vector<double> weight(units.size(), 1.0);
  if (options.pressure() != Pressure::kUniform) {
    const auto flops = graph.unit_flops();
    std::vector<double> saving(flops.begin(), flops.end());
    if (options.pressure() == Pressure::kTime) {
      const auto elements = graph.unit_activations();
      for (size_t u = 0; u < units.size(); ++u)
        saving[u] += options.element_flops() * static_cast<double>(elements[u]);
    }
    double total = 0.0;
    int64_t counted = 0;
    for (size_t u = 0; u < units.size(); ++u) {
      if (graph.prunable(static_cast<int64_t>(u))) {
        total += saving[u];
        ++counted;
      }
    }
    // Units that cannot be cut keep λ as it is: more pressure on them would buy nothing.
    if (total > 0.0) {
      const double mean = total / static_cast<double>(counted);
      for (size_t u = 0; u < units.size(); ++u) {
        if (graph.prunable(static_cast<int64_t>(u)))
          weight[u] = saving[u] / mean;
      }
    }
  }
  if (options.protect_floor()) {
    const auto scales = unit_scales(graph);
    for (const auto& group : graph.groups()) {
      std::vector<int64_t> ranked;
      for (int64_t u : group.units) {
        if (graph.prunable(u) && !std::isnan(scales[u]))
          ranked.push_back(u);
      }
      std::sort(ranked.begin(), ranked.end(),
                [&](int64_t a, int64_t b) { return scales[a] > scales[b]; });
      const auto floor = static_cast<size_t>(group_floor(group.name, group.initial_size, cuts));
      for (size_t i = 0; i < ranked.size() && i < floor; ++i)
        weight[ranked[i]] = 0.0;
    }
  }
  return weight;
}

std::map<std::string, std::vector<double>> scale_entry_weights(
    const DependencyGraph& graph, const std::vector<double>& unit_weight,
    const std::vector<std::string>& scale_names) {
  const std::set<std::string> names(scale_names.begin(), scale_names.end());
  std::map<std::string, std::vector<double>> entries;
  bool uniform = true;
  for (const auto& axis : graph.axes()) {
    if (axis.tensor < 0 || axis.dim != 0 || !names.count(graph.tensors()[axis.tensor].name))
      continue;
    auto& values = entries[graph.tensors()[axis.tensor].name];
    values.assign(axis.owner.size(), 1.0);
    for (size_t i = 0; i < axis.owner.size(); ++i) {
      if (axis.owner[i] >= 0)
        values[i] = unit_weight[axis.owner[i]];
      uniform = uniform && values[i] == 1.0;
    }
  }
  if (uniform)
    entries.clear();
  return entries;
}

}  // namespace demon::detail
