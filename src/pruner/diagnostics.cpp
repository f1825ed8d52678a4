#include "pruner/diagnostics.h"

#include <set>
#include <sstream>

#include "detail/user_text.h"
#include "pruner/optimizer_family.h"

namespace demon::detail {
namespace {

constexpr const char* kShortfallMarker = ": the budget asked for ";

}  // namespace

std::optional<Problem> missing_scales_problem(Regularizer regularizer, bool pressure_on,
                                              bool has_scales) {
  if (regularizer == Regularizer::kNone || !pressure_on || has_scales)
    return std::nullopt;
  return Problem{
      "the model has no normalization layer with a scale (BatchNorm, GroupNorm, LayerNorm, "
      "InstanceNorm with affine=true): the " +
          to_string(regularizer) +
          " pressure has nothing to act on, so only units that die on their own will be pruned. "
          "Put a BatchNorm after each convolution or linear layer whose units should be pruned, "
          "or set regularizer \"none\" to say that this is intended.",
      /*inaction=*/true};
}

std::vector<Problem> optimizer_coverage_problems(torch::nn::Module& model,
                                                 const torch::optim::Optimizer& optimizer) {
  std::set<const void*> stepped;
  for (const auto& p : optimizer_params(optimizer))
    stepped.insert(p.unsafeGetTensorImpl());
  std::vector<std::string> missing;
  std::set<const void*> owned;
  for (const auto& item : model.named_parameters()) {
    owned.insert(item.value().unsafeGetTensorImpl());
    if (item.value().requires_grad() && !stepped.count(item.value().unsafeGetTensorImpl()))
      missing.push_back(item.key());
  }
  std::vector<Problem> problems;
  if (!missing.empty()) {
    problems.push_back({std::to_string(missing.size()) +
                        " trainable parameters of the model are in no parameter group of the "
                        "optimizer (" +
                        list_names(missing, 4) +
                        "): they are never stepped, so λ cannot shrink their scales. Add them to "
                        "the optimizer, or set requires_grad(false) if they are frozen."});
  }
  int64_t foreign = 0;
  for (const auto* p : stepped)
    foreign += owned.count(p) == 0;
  if (foreign > 0) {
    problems.push_back({std::to_string(foreign) +
                        " parameters of the optimizer are not the model's: demon cannot cut "
                        "them, and a prune event leaves them as they are."});
  }
  return problems;
}

std::vector<Problem> discovery_problems(const DependencyGraph& graph,
                                        const std::map<std::string, int64_t>& group_min_width,
                                        const std::map<std::string, int64_t>& group_sizes) {
  std::vector<Problem> problems;
  std::vector<std::string> unknown;
  for (const auto& [name, floor] : group_min_width) {
    if (!group_sizes.count(name))
      unknown.push_back(name);
  }
  if (!unknown.empty()) {
    problems.push_back({"group_min_width names groups the model does not have (" +
                        list_names(unknown, 4) +
                        "); groups are named after their first layer, see "
                        "DependencyGraph::describe()"});
  }
  int64_t prunable = 0;
  std::map<std::string, int64_t> reasons;
  for (size_t u = 0; u < graph.units().size(); ++u) {
    const auto& unit = graph.units()[u];
    prunable += graph.prunable(static_cast<int64_t>(u));
    if (unit.pinned)
      ++reasons[unit.pin_reason];
  }
  if (prunable == 0) {
    std::vector<std::string> why;
    for (const auto& [reason, count] : reasons)
      why.push_back(std::to_string(count) + " units: " + reason);
    for (const auto& [op, count] : graph.unknown_ops())
      why.push_back("op " + op + " is unknown to the graph walker");
    problems.push_back({"no unit of the model can be pruned" +
                            (why.empty() ? std::string(" (no activation reads a prunable channel)")
                                         : " (" + list_names(why, 6) + ")") +
                            "; see DependencyGraph::describe() for every group and its reason",
                        /*inaction=*/true});
  }
  return problems;
}

Problem zero_gradient_scale_problem(int64_t step) {
  return {"no normalization scale had a non-zero loss gradient in the first " +
              std::to_string(step) +
              " steps, so the automatic λ, a multiple of that gradient, is 0. Set lambda_peak to "
              "push the scales anyway, or check that they are trained (requires_grad, in the "
              "optimizer).",
          /*inaction=*/true};
}

Problem budget_shortfall_problem(const BudgetController& budget, int64_t step, double cost_ratio,
                                 double full_ceiling) {
  std::ostringstream what;
  what << "step " << step << kShortfallMarker << budget.target() << " of the initial cost by step "
       << budget.by_step() << ", and the model is at " << cost_ratio;
  const bool at_ceiling = budget.lambda() >= budget.ceiling() * (1.0 - 1e-9);
  if (at_ceiling && budget.ceiling() < full_ceiling * (1.0 - 1e-9)) {
    what << "; λ is at a ceiling the health guard lowered when the training loss rose under the "
            "pressure: the model does not take more, so ask for less or give the run more steps";
  } else if (at_ceiling) {
    what << "; λ is at its ceiling (controller_max_lambda times its start): raise "
            "controller_max_lambda, or give the run more steps";
  } else {
    what << "; the controller keeps raising λ, which a longer run gives more time to act";
  }
  return {what.str()};
}

bool is_budget_shortfall(const std::string& message) {
  return message.find(kShortfallMarker) != std::string::npos;
}

}  // namespace demon::detail
