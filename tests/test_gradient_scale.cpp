// The automatic λ: a multiple of what the loss pushes back with on the normalization scales.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "demon/demon.h"
#include "support.h"

namespace {

using demon::DemonOptions;
using demon::DemonPruner;
using demon::GradientScale;
using demon::NormScale;
using demon::testing::SmallCnn;

// Two scales whose gradients are set by hand.
std::vector<NormScale> scales_with_gradients(const std::vector<float>& a,
                                             const std::vector<float>& b) {
  auto first = torch::ones({static_cast<int64_t>(a.size())}, torch::requires_grad());
  auto second = torch::ones({static_cast<int64_t>(b.size())}, torch::requires_grad());
  first.mutable_grad() = torch::tensor(a);
  second.mutable_grad() = torch::tensor(b);
  return {{"a.weight", first}, {"b.weight", second}};
}

TEST(GradientScaleTest, IsTheMeanAbsoluteGradientAveragedOverTheSteps) {
  GradientScale scale(/*until_step=*/3);
  EXPECT_EQ(scale.value(), 0.0);
  scale.observe(scales_with_gradients({1.0f, -3.0f}, {2.0f, 0.0f}));  // mean |g| 1.5
  EXPECT_DOUBLE_EQ(scale.value(), 1.5);  // the first step is read at once
  scale.observe(scales_with_gradients({-0.5f, 0.5f}, {0.5f, -0.5f}));  // 0.5
  EXPECT_DOUBLE_EQ(scale.value(), 1.5);                                // later ones at refresh()
  scale.refresh();
  EXPECT_DOUBLE_EQ(scale.value(), 1.0);
  EXPECT_TRUE(scale.measuring(2));
  EXPECT_FALSE(scale.measuring(3));
}

TEST(GradientScaleTest, LeavesOutScalesWithoutGradientsAndStepsWithNone) {
  GradientScale scale(10);
  auto scales = scales_with_gradients({4.0f}, {0.0f, 0.0f, 0.0f});
  scales[1].scale.mutable_grad() = torch::Tensor();
  scale.observe(scales);
  EXPECT_DOUBLE_EQ(scale.value(), 4.0);
  scales[0].scale.mutable_grad() = torch::Tensor();
  scale.observe(scales);
  scale.refresh();
  EXPECT_EQ(scale.observations(), 1);
  EXPECT_DOUBLE_EQ(scale.value(), 4.0);
}

TEST(GradientScaleTest, StateRoundTripsAndDamageIsRefused) {
  GradientScale scale(5);
  scale.observe(scales_with_gradients({1.0f}, {3.0f}));
  scale.observe(scales_with_gradients({1.0f}, {1.0f}));
  GradientScale restored(5);
  restored.load_json(scale.to_json());
  scale.observe(scales_with_gradients({6.0f}, {6.0f}));
  restored.observe(scales_with_gradients({6.0f}, {6.0f}));
  scale.refresh();
  restored.refresh();
  EXPECT_DOUBLE_EQ(restored.value(), scale.value());
  EXPECT_DOUBLE_EQ(restored.value(), (2.0 + 1.0 + 6.0) / 3.0);

  EXPECT_THROW(GradientScale(6).load_json(scale.to_json()), demon::ValueError);  // other options
  auto damaged = scale.to_json();
  damaged["sum"] = -1.0;
  EXPECT_THROW(restored.load_json(damaged), demon::ValueError);
  damaged = scale.to_json();
  damaged.erase("observations");
  EXPECT_THROW(restored.load_json(damaged), demon::ValueError);
  EXPECT_DOUBLE_EQ(restored.value(), scale.value());  // unchanged by the refusals
}

// Trains SmallCnn with AdamW for `steps` on a loss multiplied by `loss_scale`; returns the
// BatchNorm scales.
struct Trained {
  torch::Tensor scales;
  double lambda_peak;
};
Trained train(double loss_scale, DemonOptions options, int64_t steps) {
  torch::manual_seed(0);
  SmallCnn model;
  torch::optim::AdamW optimizer(model->parameters(),
                                torch::optim::AdamWOptions(1e-2).eps(1e-12).weight_decay(0.0));
  DemonPruner pruner(model, optimizer, options.noise(false).prune(false));
  for (int64_t step = 0; step < steps; ++step) {
    const auto batch = demon::testing::small_batch(16, static_cast<uint64_t>(step % 4));
    pruner.zero_grad();
    pruner.backward(loss_scale * torch::cross_entropy_loss(model(batch.data), batch.target));
    pruner.step();
  }
  return {torch::cat({model->bn1->weight, model->bn2->weight}).detach().clone(),
          pruner.lambda_peak()};
}

// Adam's steps do not depend on the loss's scale; an automatic λ keeps it so, since it is
// measured in the loss gradient's own units. A fixed λ means another pressure for each scale.
TEST(GradientScaleTest, AnAutomaticLambdaFollowsTheLossScale) {
  const auto options = DemonOptions(200).schedule(demon::ScheduleKind::kConstant);
  const Trained once = train(1.0, options, 60);
  const Trained tenfold = train(10.0, options, 60);
  EXPECT_NEAR(tenfold.lambda_peak / once.lambda_peak, 10.0, 1e-3);
  EXPECT_TRUE(torch::allclose(once.scales, tenfold.scales, 1e-3, 1e-4))
      << (once.scales - tenfold.scales).abs().max();

  const auto fixed = DemonOptions(options).lambda_peak(once.lambda_peak);
  const Trained fixed_once = train(1.0, fixed, 60);
  const Trained fixed_tenfold = train(10.0, fixed, 60);
  EXPECT_DOUBLE_EQ(fixed_tenfold.lambda_peak, once.lambda_peak);
  EXPECT_GT((fixed_once.scales - fixed_tenfold.scales).abs().max().item<double>(), 1e-2);
}

TEST(GradientScaleTest, ThePrunerMeasuresUntilLambdaPeaksThenHoldsTheUnit) {
  torch::manual_seed(0);
  SmallCnn model;
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  // Span 87 of 100 steps, λ peaks at int(0.3 · 87) = 26; checks every 5 steps.
  DemonPruner pruner(
      model, optimizer,
      DemonOptions(100).lambda_relative(2.0).prune_every(20).noise(false).health_guard(false));
  ASSERT_NE(pruner.gradient_scale(), nullptr);
  EXPECT_EQ(pruner.gradient_scale()->until_step(), 26);
  EXPECT_EQ(pruner.lambda_peak(), 0.0);  // nothing measured yet
  std::vector<double> units;
  for (int64_t step = 0; step < 40; ++step) {
    const auto batch = demon::testing::small_batch(16, static_cast<uint64_t>(step));
    pruner.zero_grad();
    pruner.backward(torch::cross_entropy_loss(model(batch.data), batch.target));
    pruner.step();
    units.push_back(pruner.gradient_scale()->value());
  }
  EXPECT_EQ(pruner.gradient_scale()->observations(), 26);
  EXPECT_GT(units.front(), 0.0);
  EXPECT_NE(units[4], units[25]);             // refreshed at the checks up to the peak
  EXPECT_DOUBLE_EQ(units[25], units.back());  // then held
  EXPECT_DOUBLE_EQ(pruner.lambda_peak(), 2.0 * units.back());
  EXPECT_DOUBLE_EQ(pruner.current_lambda(),
                   units.back() * pruner.options().lambda_schedule()(pruner.current_step()));

  // Under a budget the controller moves λ from the first steps: the unit is measured over the
  // first prune interval only, where λ is still near its start, or over the rise if it is
  // shorter.
  DemonPruner budget(model, optimizer,
                     DemonOptions(100).target(0.5).prune_every(20).health_guard(false));
  ASSERT_NE(budget.gradient_scale(), nullptr);
  EXPECT_EQ(budget.gradient_scale()->until_step(), 20);
  DemonPruner short_rise(model, optimizer,
                         DemonOptions(100).target(0.5).prune_every(50).health_guard(false));
  EXPECT_EQ(short_rise.gradient_scale()->until_step(), 26);

  // An explicit λ is used as given, with no measurement.
  DemonPruner fixed(model, optimizer, DemonOptions(100).lambda_peak(0.25));
  EXPECT_EQ(fixed.gradient_scale(), nullptr);
  EXPECT_DOUBLE_EQ(fixed.lambda_peak(), 0.25);
}

TEST(GradientScaleTest, LambdaRelativeMustBeFiniteAndPositive) {
  for (double bad : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()}) {
    EXPECT_THROW(DemonOptions(100).lambda_relative(bad).validate(), demon::ValueError) << bad;
  }
  EXPECT_EQ(demon::DemonOptions::from_json({{"lambda_relative", 3.0}}).lambda_relative(), 3.0);
}

}  // namespace
