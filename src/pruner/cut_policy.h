#pragma once
// What a prune event may cut: the floors every group keeps, the collapse cap, and the budget's
// stop at its target. Pure functions; DemonPruner applies what they return.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "demon/criterion.h"
#include "demon/graph.h"
#include "demon/options.h"
#include "demon/report.h"
#include "demon/surgery.h"

namespace demon::detail {

/// The floors of `options` for the surgery. min_width_fraction is taken of each group's width
/// when first seen (`initial_group_sizes`, by name), as a floor of the group's own: a graph
/// rediscovered after a cut starts its groups' sizes anew.
PruneOptions cut_floors(const DemonOptions& options,
                        const std::map<std::string, int64_t>& initial_group_sizes);

struct CutLimit {
  std::vector<int64_t> units;  ///< what the event cuts
  int64_t deferred = 0;        ///< selected but held back
  /// The budget held units back: the cut meets the target as closely as whole units allow.
  bool stopped_at_target = false;
  /// Set when the collapse cap held units back: the warning to give.
  std::string collapse_warning;
};

/// Limits the selected `units` of the prune event at `step`. At most max_cut_fraction of the
/// live prunable units are cut; with a `target`, no further than it: the longest run of the
/// selection, least alive first, whose cut keeps `cost_without(units)` at or above the target.
/// What is held back is always the most alive (largest peak, then highest id).
CutLimit limit_cut(std::vector<int64_t> units, const UnitEvidence& evidence,
                   const DependencyGraph& graph, double max_cut_fraction,
                   std::optional<double> target,
                   const std::function<double(const std::vector<int64_t>&)>& cost_without,
                   int64_t step);

/// What the budget's projection between prune events counts as cut: the units `criterion` picks
/// from `seen`, and with a `lead` > 0 also those below `lead` of their group's mean activity
/// (dying, so that λ eases before they die), sorted and unique.
std::vector<int64_t> projected_cut(const DeathCriterion& criterion, const UnitEvidence& seen,
                                   double lead);

/// Each group's width (live units), in group order.
std::vector<int64_t> group_widths(const DependencyGraph& graph);

/// The groups whose width differs from `before` (group_widths of the graph before a cut).
std::vector<PruneReport::GroupChange> changed_groups(const DependencyGraph& graph,
                                                     const std::vector<int64_t>& before);

}  // namespace demon::detail
