// The budget controller (budget.h) and DemonPruner under a budget: the plan, its limits, the
// warnings, and a FLOPs target reached.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "demon/demon.h"
#include "graph_support.h"
#include "models.h"
#include "support.h"
#include "training_support.h"

namespace {

using demon::DemonOptions;
using demon::DemonPruner;
using namespace demon::testing;

TEST(BudgetTest, ControllerFollowsThePlan) {
  demon::BudgetController c(/*target=*/0.3, /*by_step=*/1000, /*lambda0=*/1e-2, /*gain=*/2.0);
  EXPECT_DOUBLE_EQ(c.planned(0), 1.0);
  EXPECT_NEAR(c.planned(500), 0.65, 1e-12);
  EXPECT_DOUBLE_EQ(c.planned(1000), 0.3);
  EXPECT_DOUBLE_EQ(c.planned(5000), 0.3);
  // Behind the plan: λ grows; ahead: it shrinks.
  const double behind = c.update(500, 0.9);
  EXPECT_GT(behind, 1e-2);
  const double ahead = c.update(600, 0.4);
  EXPECT_LT(ahead, behind);
  // Clamped to [λ0·1e-3, λ0·1e3].
  for (int i = 0; i < 100; ++i)
    c.update(700, 1.0);
  EXPECT_DOUBLE_EQ(c.lambda(), 10.0);
  // A projection steers like a measurement, but one under the target holds λ and is no arrival.
  EXPECT_LT(c.project(750, 0.35), 10.0);
  const double held = c.lambda();
  EXPECT_EQ(c.project(760, 0.2), held);
  EXPECT_FALSE(c.reached());
  // Reached (measured at an event): the floor, for good.
  EXPECT_EQ(c.update(800, 0.29), 0.0);
  EXPECT_TRUE(c.reached());
  EXPECT_EQ(c.reached_at(), 800);
  EXPECT_EQ(c.update(900, 0.5), 0.0);
  demon::BudgetController d(0.3, 1000, 1e-2, 2.0);
  d.load_json(c.to_json());
  EXPECT_EQ(d.reached_at(), 800);
  // A damaged state is refused whole: nothing of it is taken.
  demon::BudgetController e(0.3, 1000, 1e-2, 2.0);
  auto damaged = c.to_json();
  damaged["reached_at"] = "soon";
  EXPECT_THROW(e.load_json(damaged), demon::ValueError);
  EXPECT_FALSE(e.reached());
  EXPECT_DOUBLE_EQ(e.lambda(), 1e-2);
  EXPECT_THROW(demon::BudgetController(1.5, 1000, 1e-2, 2.0), std::invalid_argument);
}

TEST(BudgetTest, ControllerGrowthIsRateLimited) {
  // At most ×2 per 10 steps, however far behind the plan; shrinking is not limited.
  demon::BudgetController c(/*target=*/0.3, /*by_step=*/100, /*lambda0=*/1e-2, /*gain=*/2.0,
                            /*max_growth=*/2.0, /*interval=*/10);
  const auto law = [&](int64_t step, double ratio) {
    return std::exp(2.0 * (ratio - c.planned(step)) / 0.7);
  };
  const double first = c.update(60, 1.0);  // 60 steps allow ×64: the law's own step (×3.7)
  EXPECT_NEAR(first, 1e-2 * law(60, 1.0), 1e-12);
  EXPECT_GT(law(65, 1.0), 4.0);
  EXPECT_NEAR(c.update(65, 1.0), first * std::sqrt(2.0), 1e-12);  // 5 steps: ×√2
  EXPECT_NEAR(c.update(65, 1.0), first * std::sqrt(2.0), 1e-12);  // no time, no growth
  EXPECT_NEAR(c.project(75, 1.0), first * 2.0 * std::sqrt(2.0), 1e-12);
  const double before = c.lambda();
  const double shrunk = c.update(80, 0.301);
  EXPECT_NEAR(shrunk, before * law(80, 0.301), 1e-12);
  EXPECT_LT(shrunk, before);
  // The limit's clock survives a checkpoint.
  demon::BudgetController d(0.3, 100, 1e-2, 2.0, 2.0, 10);
  d.load_json(c.to_json());
  EXPECT_NEAR(d.update(85, 1.0), shrunk * std::sqrt(2.0), 1e-12);
  EXPECT_THROW(demon::BudgetController(0.3, 100, 1e-2, 2.0, 0.5, 10), std::invalid_argument);
  EXPECT_THROW(demon::BudgetController(0.3, 100, 1e-2, 2.0, 2.0, -1), std::invalid_argument);
}

TEST(BudgetTest, LambdaStaysUnderItsCeiling) {
  // Far behind the plan for long, λ stops at max_lambda·λ0; cap() lowers the ceiling for good.
  demon::BudgetController c(/*target=*/0.3, /*by_step=*/1000, /*lambda0=*/1e-2, /*gain=*/2.0,
                            /*max_growth=*/2.0, /*interval=*/10, /*max_lambda=*/4.0);
  EXPECT_DOUBLE_EQ(c.ceiling(), 4e-2);
  for (int64_t step = 10; step <= 900; step += 10)
    c.update(step, 1.0);
  EXPECT_DOUBLE_EQ(c.lambda(), 4e-2);
  c.cap(2e-2);
  EXPECT_DOUBLE_EQ(c.ceiling(), 2e-2);
  EXPECT_DOUBLE_EQ(c.lambda(), 2e-2);
  c.cap(1.0);  // a higher cap changes nothing
  EXPECT_DOUBLE_EQ(c.ceiling(), 2e-2);
  EXPECT_DOUBLE_EQ(c.update(990, 1.0), 2e-2);
  demon::BudgetController d(0.3, 1000, 1e-2, 2.0, 2.0, 10, 4.0);
  d.load_json(c.to_json());
  EXPECT_DOUBLE_EQ(d.ceiling(), 2e-2);
  d.cap(0.0);  // never below the floor
  EXPECT_DOUBLE_EQ(d.ceiling(), 1e-5);
  EXPECT_DOUBLE_EQ(d.lambda(), 1e-5);
  for (const double bad :
       {0.5, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    EXPECT_THROW(demon::BudgetController(0.3, 100, 1e-2, 2.0, 2.0, 10, bad), std::invalid_argument)
        << bad;
  }
}

// A budget still short of its target at the first prune event from the step it was due says so
// once, and names the fix: a higher ceiling when λ sits at it. lr 0: no unit dies.
TEST(BudgetTest, ABudgetBehindAtItsDueStepWarnsOnce) {
  for (const double max_lambda : {1.0, 1e3}) {
    torch::manual_seed(0);
    auto model = small_resnet();
    auto optimizer =
        std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.0));
    DemonPruner pruner(model, optimizer,
                       DemonOptions(100)
                           .noise(false)
                           .lambda_peak(1e-2)
                           .prune_every(8)
                           .target(0.5)
                           .target_by(0.2)
                           .controller_max_lambda(max_lambda));
    ASSERT_EQ(pruner.budget()->by_step(), 20);
    train(pruner, model, 0, 16);
    EXPECT_TRUE(pruner.warnings().empty()) << max_lambda;
    train(pruner, model, 16, 40);
    ASSERT_EQ(pruner.warnings().size(), 1u) << max_lambda;
    const std::string& warning = pruner.warnings().front();
    EXPECT_NE(warning.find("step 24: the budget asked for 0.5 of the initial cost by step 20"),
              std::string::npos)
        << warning;
    EXPECT_EQ(warning.find("raise controller_max_lambda") != std::string::npos, max_lambda == 1.0)
        << warning;
  }
}

// With a lead, the projections between events count units that are fading as well as dead
// ones, so λ rises less while they fade. The weights do not move (lr 0), so the quiet units'
// activity is all that differs.
TEST(BudgetTest, ALeadCountsFadingUnitsInTheProjections) {
  double lambda[2] = {0.0, 0.0};
  for (const int lead : {0, 1}) {
    torch::manual_seed(0);
    auto model = small_resnet();
    auto optimizer =
        std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.0));
    {
      // Quiet units: 0.05 everywhere after ReLU, a few percent of their group's mean peak.
      torch::NoGradGuard no_grad;
      for (int64_t c = 0; c < 4; ++c) {
        model->blocks[0]->bn1->weight[c] = 0.0;
        model->blocks[0]->bn1->bias[c] = 0.05;
      }
    }
    DemonPruner pruner(model, optimizer,
                       DemonOptions(100)
                           .noise(false)
                           .lambda_peak(1e-2)
                           .prune_every(50)
                           .target(0.5)
                           .controller_every(1)
                           .controller_lead(lead ? 0.1 : 0.0));
    train(pruner, model, 0, 10);
    EXPECT_EQ(pruner.prune_events(), 0);
    lambda[lead] = pruner.current_lambda();
  }
  EXPECT_GT(lambda[0], 1e-2);  // no unit is dead: behind the plan, λ rose
  EXPECT_LT(lambda[1], lambda[0]);
}

// Unset, the growth limit follows the optimizer's family: adaptive optimizers step γ by about
// the learning rate however large λ grows, SGD by lr·λ. Far behind the plan at the first event
// (the law asks for ×6), SGD's λ may only double; AdamW's takes the law's step. lr 0: only λ moves.
TEST(BudgetTest, GrowthLimitDefaultsByOptimizerFamily) {
  const auto lambda_after_first_event =
      [](std::shared_ptr<torch::optim::Optimizer> optimizer, resnet18_cifar10::ResNet18 model,
         std::optional<double> max_growth, double expected_limit) {
        DemonPruner pruner(model, optimizer,
                           DemonOptions(100)
                               .noise(false)
                               .lambda_peak(1e-2)
                               .prune_every(8)
                               .target(0.5)
                               .target_by(0.1)
                               .controller_every(1000)
                               .controller_max_growth(max_growth)
                               .controller_max_lambda(1e3));  // the growth limit alone
        EXPECT_EQ(pruner.options().controller_max_growth(), expected_limit);
        train(pruner, model, 0, 8);
        EXPECT_EQ(pruner.prune_events(), 1);
        return pruner.current_lambda() / 1e-2;
      };
  torch::manual_seed(0);
  auto model = small_resnet();
  const auto sgd = [&] {
    return std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.0));
  };
  const auto adamw = [&] {
    return std::make_shared<torch::optim::AdamW>(model->parameters(),
                                                 torch::optim::AdamWOptions(0.0));
  };
  EXPECT_NEAR(lambda_after_first_event(sgd(), model, std::nullopt, 2.0), 2.0, 1e-9);
  const double adaptive = lambda_after_first_event(adamw(), model, std::nullopt, 8.0);
  EXPECT_GT(adaptive, 4.0);
  EXPECT_LT(adaptive, 8.0);
  // A value given is kept, whatever the optimizer.
  EXPECT_NEAR(lambda_after_first_event(adamw(), model, 2.0, 2.0), 2.0, 1e-9);
  EXPECT_EQ(demon::default_controller_max_growth(*sgd()), 2.0);
  EXPECT_EQ(demon::default_controller_max_growth(*adamw()), 8.0);
}

TEST(BudgetTest, ReachesAFlopsTargetOnASmallModel) {
  auto model = small_resnet(seed_from_env());
  auto optimizer = std::make_shared<torch::optim::AdamW>(
      model->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(5e-4));
  const int64_t steps = 300;
  DemonPruner pruner(model, optimizer,
                     DemonOptions(steps).prune_every(20).target(0.5).target_by(0.6));
  int64_t events = 0;
  pruner.on_prune([&](const demon::PruneReport& report) {
    ++events;
    EXPECT_FALSE(std::isnan(report.cost_ratio));
    EXPECT_GE(report.cost_ratio, 0.5 - 1e-9) << "cut below the target at step " << report.step;
  });
  train_then_anneal<torch::optim::AdamWOptions>(pruner, model, *optimizer, steps);
  ASSERT_NE(pruner.budget(), nullptr);
  const double reached = pruner.cost_ratio();
  EXPECT_NEAR(reached, 0.5, 0.05) << pruner.summary().table();
  EXPECT_TRUE(pruner.budget()->reached());
  EXPECT_LE(pruner.budget()->reached_at(), steps * 3 / 4);
  EXPECT_EQ(pruner.current_lambda(), 0.0);
  EXPECT_EQ(pruner.current_sigma(), 0.0);
  EXPECT_GT(accuracy(model), 0.9);
  std::cout << "FLOPs ratio " << reached << " reached at step " << pruner.budget()->reached_at()
            << " of " << steps << ", " << events << " events\n";
}

}  // namespace
