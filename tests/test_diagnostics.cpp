// What the pruner tells the user about a setup (src/pruner/diagnostics.h), each check on its own.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "demon/demon.h"
#include "pruner/diagnostics.h"

namespace {

using demon::detail::Problem;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(DiagnosticsTest, MissingScalesOnlyWhenAPressureHasNothingToPush) {
  using demon::Regularizer;
  EXPECT_FALSE(demon::detail::missing_scales_problem(Regularizer::kLasso, true, true));
  EXPECT_FALSE(demon::detail::missing_scales_problem(Regularizer::kLasso, false, false));
  EXPECT_FALSE(demon::detail::missing_scales_problem(Regularizer::kNone, true, false));
  const auto problem = demon::detail::missing_scales_problem(Regularizer::kLasso, true, false);
  ASSERT_TRUE(problem);
  EXPECT_TRUE(problem->inaction);
  EXPECT_TRUE(contains(problem->message, "no normalization layer with a scale"));
  EXPECT_TRUE(contains(problem->message, "lasso"));
}

TEST(DiagnosticsTest, OptimizerCoverageNamesUnsteppedAndForeignParameters) {
  torch::nn::Sequential model(torch::nn::Linear(4, 3), torch::nn::Linear(3, 2));
  const auto params = model->named_parameters();
  // Only the first layer is stepped; the second's bias is frozen, its weight is forgotten.
  params["1.bias"].set_requires_grad(false);
  auto foreign = torch::zeros({5}, torch::requires_grad());
  torch::optim::SGD optimizer({params["0.weight"], params["0.bias"], foreign},
                              torch::optim::SGDOptions(0.1));
  const std::vector<Problem> problems =
      demon::detail::optimizer_coverage_problems(*model, optimizer);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_TRUE(contains(problems[0].message, "1 trainable parameters"));
  EXPECT_TRUE(contains(problems[0].message, "(1.weight)"));
  EXPECT_FALSE(contains(problems[0].message, "1.bias"));
  EXPECT_TRUE(contains(problems[1].message, "1 parameters of the optimizer are not the model's"));
  EXPECT_FALSE(problems[0].inaction || problems[1].inaction);

  torch::optim::SGD complete(model->parameters(), torch::optim::SGDOptions(0.1));
  EXPECT_TRUE(demon::detail::optimizer_coverage_problems(*model, complete).empty());
}

TEST(DiagnosticsTest, DiscoveryNamesUnknownFloorsAndAModelWithNothingToPrune) {
  torch::nn::Sequential prunable(torch::nn::Linear(4, 8), torch::nn::BatchNorm1d(8),
                                 torch::nn::ReLU(), torch::nn::Linear(8, 2));
  const auto graph =
      demon::DependencyGraph::discover(*prunable, prunable->forward(torch::randn({3, 4})));
  std::map<std::string, int64_t> sizes;
  for (const auto& group : graph.groups())
    sizes[group.name] = group.initial_size;
  ASSERT_FALSE(sizes.empty());
  EXPECT_TRUE(demon::detail::discovery_problems(graph, {}, sizes).empty());
  EXPECT_TRUE(demon::detail::discovery_problems(graph, {{sizes.begin()->first, 2}}, sizes).empty());
  const auto unknown = demon::detail::discovery_problems(graph, {{"no_such_group", 2}}, sizes);
  ASSERT_EQ(unknown.size(), 1u);
  EXPECT_TRUE(contains(unknown[0].message, "no_such_group"));
  EXPECT_FALSE(unknown[0].inaction);

  // One linear layer: its outputs are the network's, so nothing can be cut.
  torch::nn::Linear alone(4, 2);
  const auto fixed = demon::DependencyGraph::discover(*alone, alone->forward(torch::randn({3, 4})));
  const auto nothing = demon::detail::discovery_problems(fixed, {}, {});
  ASSERT_EQ(nothing.size(), 1u);
  EXPECT_TRUE(nothing[0].inaction);
  EXPECT_TRUE(contains(nothing[0].message, "no unit of the model can be pruned"));
}

TEST(DiagnosticsTest, ZeroGradientScaleSaysWhenAndIsInaction) {
  const Problem problem = demon::detail::zero_gradient_scale_problem(40);
  EXPECT_TRUE(problem.inaction);
  EXPECT_TRUE(contains(problem.message, "in the first 40 steps"));
  EXPECT_FALSE(demon::detail::is_budget_shortfall(problem.message));
}

TEST(DiagnosticsTest, BudgetShortfallSaysWhereLambdaStands) {
  // Starting λ 1, ceiling 10: the controller can still raise λ.
  demon::BudgetController rising(0.5, 100, 1.0, 2.0, 2.0, 10, 10.0);
  const Problem raising = demon::detail::budget_shortfall_problem(rising, 120, 0.8, 10.0);
  EXPECT_TRUE(demon::detail::is_budget_shortfall(raising.message));
  EXPECT_TRUE(contains(raising.message, "step 120: the budget asked for 0.5"));
  EXPECT_TRUE(contains(raising.message, "by step 100, and the model is at 0.8"));
  EXPECT_TRUE(contains(raising.message, "keeps raising"));
  EXPECT_FALSE(raising.inaction);

  // The guard lowered the ceiling to λ's value: the model takes no more.
  demon::BudgetController capped = rising;
  capped.cap(rising.lambda());
  EXPECT_TRUE(contains(demon::detail::budget_shortfall_problem(capped, 120, 0.8, 10.0).message,
                       "ceiling the health guard lowered"));
  // λ at the full ceiling (λ0 × controller_max_lambda).
  demon::BudgetController full(0.5, 100, 1.0, 2.0, 2.0, 10, 1.0);
  EXPECT_TRUE(contains(demon::detail::budget_shortfall_problem(full, 120, 0.8, 1.0).message,
                       "raise controller_max_lambda"));
}

}  // namespace
