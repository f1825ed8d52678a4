#include "pruner/cut_policy.h"

#include <algorithm>
#include <cmath>
#include <iterator>

namespace demon::detail {

PruneOptions cut_floors(const DemonOptions& options,
                        const std::map<std::string, int64_t>& initial_group_sizes) {
  const auto fractions = PruneOptions()
                             .group_min_width(options.group_min_width())
                             .min_width_fraction(options.min_width_fraction());
  GroupWidths floors = options.group_min_width();
  for (const auto& [name, initial] : initial_group_sizes)
    floors[name] = group_floor(name, initial, fractions);
  return PruneOptions()
      .min_width(options.min_width())
      .width_multiple(options.width_multiple())
      .group_min_width(floors);
}

CutLimit limit_cut(std::vector<int64_t> units, const UnitEvidence& evidence,
                   const DependencyGraph& graph, double max_cut_fraction,
                   std::optional<double> target,
                   const std::function<double(const std::vector<int64_t>&)>& cost_without,
                   int64_t step) {
  CutLimit limit;
  const size_t count = units.size();
  // Most alive first, so that what is held back is what has the most to lose.
  auto order = [&](int64_t a, int64_t b) {
    const double pa = evidence.peak.empty() ? 0.0 : evidence.peak[a];
    const double pb = evidence.peak.empty() ? 0.0 : evidence.peak[b];
    return pa != pb ? pa > pb : a < b;
  };
  if (max_cut_fraction < 1.0) {
    int64_t live = 0;
    for (size_t u = 0; u < graph.units().size(); ++u)
      live += graph.prunable(static_cast<int64_t>(u));
    const auto cap = static_cast<size_t>(std::floor(max_cut_fraction * static_cast<double>(live)));
    if (units.size() > cap) {
      std::sort(units.begin(), units.end(), order);
      limit.collapse_warning =
          "prune event at step " + std::to_string(step) + ": " + std::to_string(units.size()) +
          " of " + std::to_string(live) + " prunable units selected; the collapse guard cuts " +
          std::to_string(cap) + " (max_cut_fraction " + std::to_string(max_cut_fraction) + ")";
      units.erase(units.begin(), units.end() - static_cast<std::ptrdiff_t>(cap));
    }
  }
  if (target && !units.empty() && cost_without(units) < *target) {
    limit.stopped_at_target = true;
    // Units held back are left in place.
    std::sort(units.begin(), units.end(), order);
    size_t low = 0, high = units.size();  // cutting the last `k` of the order
    while (low < high) {
      const size_t mid = (low + high + 1) / 2;
      const std::vector<int64_t> tail(units.end() - static_cast<std::ptrdiff_t>(mid), units.end());
      if (cost_without(tail) >= *target) {
        low = mid;
      } else {
        high = mid - 1;
      }
    }
    units.erase(units.begin(), units.end() - static_cast<std::ptrdiff_t>(low));
  }
  limit.deferred = static_cast<int64_t>(count - units.size());
  limit.units = std::move(units);
  return limit;
}

std::vector<int64_t> projected_cut(const DeathCriterion& criterion, const UnitEvidence& seen,
                                   double lead) {
  std::vector<int64_t> units = criterion.select(seen);
  if (lead > 0.0) {
    const auto dying = QuasiDeadUnits(lead).select(seen);
    units.insert(units.end(), dying.begin(), dying.end());
    std::sort(units.begin(), units.end());
    units.erase(std::unique(units.begin(), units.end()), units.end());
  }
  return units;
}

std::vector<int64_t> group_widths(const DependencyGraph& graph) {
  std::vector<int64_t> widths;
  for (const auto& group : graph.groups())
    widths.push_back(static_cast<int64_t>(group.units.size()));
  return widths;
}

std::vector<PruneReport::GroupChange> changed_groups(const DependencyGraph& graph,
                                                     const std::vector<int64_t>& before) {
  std::vector<PruneReport::GroupChange> changes;
  const std::vector<int64_t> after = group_widths(graph);
  for (size_t g = 0; g < after.size() && g < before.size(); ++g) {
    if (after[g] != before[g])
      changes.push_back({graph.groups()[g].name, before[g], after[g]});
  }
  return changes;
}

}  // namespace demon::detail
