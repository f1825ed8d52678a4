#pragma once
// What a budget counts: the model's cost in the budget's metric (FLOPs, parameters, or the user's
// own cost function) as a fraction of the model's as first seen, now or after a proposed cut.

#include <cstdint>
#include <functional>
#include <vector>

#include "demon/budget.h"
#include "demon/graph.h"

namespace demon::detail {

/// The model as first seen, in each metric; 0 where it is not known (no cost function yet).
struct CostBaseline {
  int64_t flops = 0;
  int64_t parameters = 0;
  double custom = 0.0;
};

using CostFunction = std::function<double(const DependencyGraph&)>;

/// `graph`'s cost in `metric` as a fraction of `baseline`'s, or, with `cut` given, the cost the
/// graph would have with those units cut. A user's cost function cannot be asked about a cut
/// that has not happened: its current value stands in. 1 when the baseline of the metric is 0.
double cost_fraction(BudgetMetric metric, const DependencyGraph& graph,
                     const CostBaseline& baseline, const CostFunction& custom,
                     const std::vector<int64_t>* cut = nullptr);

}  // namespace demon::detail
