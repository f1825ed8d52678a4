#pragma once
// What DemonPruner tells the user about a setup that cannot work as meant: each function looks at
// one part of the setup and returns the problems it finds, worded for the user, without acting on
// them. The pruner warns once per text, or throws under error_if_inactive for the problems that
// leave it with nothing to do (Problem::inaction).

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "demon/budget.h"
#include "demon/graph.h"
#include "demon/options.h"

namespace demon::detail {

struct Problem {
  std::string message;
  /// The pruner will prune nothing because of it (error_if_inactive turns it into an error).
  bool inaction = false;
};

/// A pressure set (`pressure_on`) on a model without normalization scales (`has_scales` false).
std::optional<Problem> missing_scales_problem(Regularizer regularizer, bool pressure_on,
                                              bool has_scales);

/// Trainable parameters of `model` that no parameter group of `optimizer` steps, and
/// parameters the optimizer steps that are not the model's.
std::vector<Problem> optimizer_coverage_problems(torch::nn::Module& model,
                                                 const torch::optim::Optimizer& optimizer);

/// At the first discovery: group_min_width naming groups `group_sizes` lacks, and a graph with
/// no prunable unit (with the reasons its units are pinned, and the ops the walker did not know).
std::vector<Problem> discovery_problems(const DependencyGraph& graph,
                                        const std::map<std::string, int64_t>& group_min_width,
                                        const std::map<std::string, int64_t>& group_sizes);

/// The automatic λ's measurement ended at `step` with a unit of 0: no scale had a loss gradient.
Problem zero_gradient_scale_problem(int64_t step);

/// A budget still short of its target at a prune event at or after the step it was due by:
/// what the model is at, and what to change, from where λ stands against its ceiling (the
/// health guard's lowered one, or controller_max_lambda's).
Problem budget_shortfall_problem(const BudgetController& budget, int64_t step, double cost_ratio,
                                 double full_ceiling);

/// Whether `message` is the budget_shortfall_problem's (said once per run, checkpoints included).
bool is_budget_shortfall(const std::string& message);

}  // namespace demon::detail
