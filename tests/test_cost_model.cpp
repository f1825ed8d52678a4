// The budget's cost as a fraction of the initial model's (src/pruner/cost_model.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "demon/demon.h"
#include "pruner/cost_model.h"

namespace {

using demon::BudgetMetric;
using demon::detail::cost_fraction;
using demon::detail::CostBaseline;

struct Net {
  Net()
      : model(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3)), torch::nn::BatchNorm2d(8),
              torch::nn::ReLU(), torch::nn::Flatten(), torch::nn::Linear(8 * 6 * 6, 2)),
        graph(demon::DependencyGraph::discover(*model, model->forward(torch::randn({2, 3, 8, 8})))),
        baseline{graph.flops(), graph.parameters_without({}), 0.0} {}
  torch::nn::Sequential model;
  demon::DependencyGraph graph;
  CostBaseline baseline;
  std::vector<int64_t> first_units() const {
    return {graph.groups().front().units[0], graph.groups().front().units[1]};
  }
};

TEST(CostModelTest, FlopsAndParametersNowAndAfterACut) {
  Net net;
  ASSERT_GT(net.baseline.flops, 0);
  const auto cut = net.first_units();
  EXPECT_DOUBLE_EQ(cost_fraction(BudgetMetric::kFlops, net.graph, net.baseline, {}), 1.0);
  EXPECT_DOUBLE_EQ(
      cost_fraction(BudgetMetric::kFlops, net.graph, net.baseline, {}, &cut),
      static_cast<double>(net.graph.flops_without(cut)) / static_cast<double>(net.baseline.flops));
  EXPECT_LT(cost_fraction(BudgetMetric::kFlops, net.graph, net.baseline, {}, &cut), 1.0);
  EXPECT_DOUBLE_EQ(cost_fraction(BudgetMetric::kParameters, net.graph, net.baseline, {}, &cut),
                   static_cast<double>(net.graph.parameters_without(cut)) /
                       static_cast<double>(net.baseline.parameters));
  // Against a baseline twice as large, the same graph is at half.
  CostBaseline larger = net.baseline;
  larger.flops *= 2;
  EXPECT_DOUBLE_EQ(cost_fraction(BudgetMetric::kFlops, net.graph, larger, {}), 0.5);
}

TEST(CostModelTest, CustomCostIsItsCurrentValueEvenForACut) {
  Net net;
  net.baseline.custom = 10.0;
  const demon::detail::CostFunction cost = [](const demon::DependencyGraph&) { return 4.0; };
  const auto cut = net.first_units();
  EXPECT_DOUBLE_EQ(cost_fraction(BudgetMetric::kCustom, net.graph, net.baseline, cost), 0.4);
  EXPECT_DOUBLE_EQ(cost_fraction(BudgetMetric::kCustom, net.graph, net.baseline, cost, &cut), 0.4);
  // Without a function, or before its baseline is known: the whole cost.
  EXPECT_DOUBLE_EQ(cost_fraction(BudgetMetric::kCustom, net.graph, net.baseline, {}), 1.0);
  net.baseline.custom = 0.0;
  EXPECT_DOUBLE_EQ(cost_fraction(BudgetMetric::kCustom, net.graph, net.baseline, cost), 1.0);
}

TEST(CostModelTest, AnUnknownBaselineCountsAsTheWholeCost) {
  Net net;
  const CostBaseline unknown;
  const auto cut = net.first_units();
  EXPECT_DOUBLE_EQ(cost_fraction(BudgetMetric::kFlops, net.graph, unknown, {}, &cut), 1.0);
  EXPECT_DOUBLE_EQ(cost_fraction(BudgetMetric::kParameters, net.graph, unknown, {}, &cut), 1.0);
}

}  // namespace
