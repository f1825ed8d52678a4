#include "pruner/cost_model.h"

namespace demon::detail {

double cost_fraction(BudgetMetric metric, const DependencyGraph& graph,
                     const CostBaseline& baseline, const CostFunction& custom,
                     const std::vector<int64_t>* cut) {
  const std::vector<int64_t> none;
  const std::vector<int64_t>& units = cut != nullptr ? *cut : none;
  switch (metric) {
    case BudgetMetric::kFlops:
      return baseline.flops > 0 ? static_cast<double>(cut != nullptr ? graph.flops_without(units)
                                                                     : graph.flops()) /
                                      static_cast<double>(baseline.flops)
                                : 1.0;
    case BudgetMetric::kParameters:
      return baseline.parameters > 0 ? static_cast<double>(graph.parameters_without(units)) /
                                           static_cast<double>(baseline.parameters)
                                     : 1.0;
    case BudgetMetric::kCustom:
      return custom && baseline.custom > 0.0 ? custom(graph) / baseline.custom : 1.0;
  }
  return 1.0;
}

}  // namespace demon::detail
