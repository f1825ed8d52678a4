#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>

#include "demon/pruner.h"
#include "support.h"

namespace {

using demon::DemonOptions;
using demon::DemonPruner;
using demon::testing::SmallCnn;

using OptimizerFactory =
    std::function<std::shared_ptr<torch::optim::Optimizer>(std::vector<torch::Tensor>)>;

struct OptimizerCase {
  std::string name;
  OptimizerFactory make;
};

std::vector<OptimizerCase> optimizer_cases() {
  using namespace torch::optim;
  return {
      {"SgdMomentum",
       [](auto p) {
         return std::make_shared<SGD>(p, SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
       }},
      {"Adam", [](auto p) { return std::make_shared<Adam>(p, AdamOptions(1e-2)); }},
      {"AdamW",
       [](auto p) { return std::make_shared<AdamW>(p, AdamWOptions(5e-3).weight_decay(5e-4)); }},
      {"RMSprop",
       [](auto p) {
         return std::make_shared<RMSprop>(p, RMSpropOptions(1e-3).momentum(0.9).centered(true));
       }},
      {"Adagrad", [](auto p) { return std::make_shared<Adagrad>(p, AdagradOptions(1e-2)); }},
  };
}

SmallCnn make_model() {
  torch::manual_seed(42);
  return SmallCnn();
}

class PrunerOptimizerTest : public ::testing::TestWithParam<OptimizerCase> {};

// With noise off, DemonPruner must equal the textbook loop: loss.backward(), add λ·sign(γ) to
// every BatchNorm γ's gradient, optimizer.step().
TEST_P(PrunerOptimizerTest, MatchesManualLassoLoopBitForBit) {
  const auto batch = demon::testing::small_batch();
  const double lambda = 0.02;

  SmallCnn model = make_model();
  DemonPruner pruner(
      model.ptr(), GetParam().make(model->parameters()),
      DemonOptions(100)
          .schedule(demon::ScheduleKind::kConstant)
          .lambda_peak(lambda)
          .pressure(demon::Pressure::kUniform)  // the manual loop's λ·sign(γ) on every scale
          .noise(false));
  SmallCnn reference = make_model();
  auto optimizer = GetParam().make(reference->parameters());

  for (int step = 0; step < 4; ++step) {
    pruner.zero_grad();
    pruner.backward(torch::cross_entropy_loss(model->forward(batch.data), batch.target));
    pruner.step();

    optimizer->zero_grad();
    torch::cross_entropy_loss(reference->forward(batch.data), batch.target).backward();
    {
      torch::NoGradGuard no_grad;
      for (auto* bn : {&reference->bn1, &reference->bn2}) {
        (*bn)->weight.mutable_grad().add_((*bn)->weight.sign(), lambda);
      }
    }
    optimizer->step();
  }
  EXPECT_EQ(pruner.current_step(), 4);
  demon::testing::expect_bitwise_equal(demon::testing::snapshot(*model),
                                       demon::testing::snapshot(*reference), GetParam().name);
}

// λ = 0 and no noise: the pruner is the bare optimizer.
TEST_P(PrunerOptimizerTest, NoPressureIsTheBareOptimizer) {
  const auto batch = demon::testing::small_batch();
  SmallCnn model = make_model();
  DemonPruner pruner(model.ptr(), GetParam().make(model->parameters()),
                     DemonOptions(100).lambda_peak(0.0).noise(false));
  SmallCnn reference = make_model();
  auto optimizer = GetParam().make(reference->parameters());
  for (int step = 0; step < 3; ++step) {
    pruner.zero_grad();
    pruner.backward(torch::cross_entropy_loss(model->forward(batch.data), batch.target));
    pruner.step();
    optimizer->zero_grad();
    torch::cross_entropy_loss(reference->forward(batch.data), batch.target).backward();
    optimizer->step();
  }
  demon::testing::expect_bitwise_equal(demon::testing::snapshot(*model),
                                       demon::testing::snapshot(*reference), GetParam().name);
}

// With everything on, training still works: the loss goes down and the weights move.
TEST_P(PrunerOptimizerTest, TrainsWithRegularizerAndNoise) {
  const auto batch = demon::testing::small_batch(32);
  SmallCnn model = make_model();
  DemonPruner pruner(model.ptr(), GetParam().make(model->parameters()),
                     DemonOptions(60).lambda_peak(1e-3).sigma_peak(1e-4));
  double first = 0.0, last = 0.0;
  for (int step = 0; step < 60; ++step) {
    pruner.zero_grad();
    auto loss = torch::cross_entropy_loss(model->forward(batch.data), batch.target);
    (step == 0 ? first : last) = loss.item<double>();
    pruner.backward(loss);
    pruner.step();
  }
  EXPECT_LT(last, first) << GetParam().name;
}

INSTANTIATE_TEST_SUITE_P(Optimizers, PrunerOptimizerTest, ::testing::ValuesIn(optimizer_cases()),
                         [](const auto& test_info) { return test_info.param.name; });

TEST(PrunerTest, NoiseIsReproducibleForAFixedSeed) {
  const auto batch = demon::testing::small_batch();
  auto run = [&](uint64_t seed) {
    SmallCnn model = make_model();
    auto optimizer = std::make_shared<torch::optim::Adam>(model->parameters());
    DemonPruner pruner(model.ptr(), optimizer, DemonOptions(10).sigma_peak(1e-2).seed(seed));
    for (int step = 0; step < 3; ++step) {
      pruner.zero_grad();
      pruner.backward(torch::cross_entropy_loss(model->forward(batch.data), batch.target));
      pruner.step();
    }
    return demon::testing::snapshot(*model);
  };
  demon::testing::expect_bitwise_equal(run(5), run(5), "same seed");
  EXPECT_FALSE(torch::equal(run(5)[0], run(6)[0]));
}

// DiscoveryOptions reach the graph through the pruner: a pinned tensor's units are not prunable,
// and the options cannot change once the structure is known.
TEST(PrunerTest, DiscoveryOptionsReachTheGraph) {
  const auto batch = demon::testing::small_batch();
  auto discovered = [&](const demon::DiscoveryOptions* options) {
    SmallCnn model = make_model();
    auto optimizer = std::make_shared<torch::optim::Adam>(model->parameters());
    DemonPruner pruner(model.ptr(), optimizer, DemonOptions(10));
    if (options)
      pruner.set_discovery_options(*options);
    pruner.zero_grad();
    pruner.backward(torch::cross_entropy_loss(model->forward(batch.data), batch.target));
    int64_t prunable = 0;
    for (const auto& group : pruner.graph()->groups()) {
      if (group.name.rfind("conv1", 0) == 0) {
        for (int64_t u : group.units)
          prunable += pruner.graph()->prunable(u) ? 1 : 0;
      }
    }
    EXPECT_THROW(pruner.set_discovery_options(demon::DiscoveryOptions()), std::logic_error);
    return prunable;
  };
  EXPECT_EQ(discovered(nullptr), 8);
  const auto pin = demon::DiscoveryOptions().pin("conv1.weight");
  EXPECT_EQ(discovered(&pin), 0);
}

TEST(PrunerTest, ReportsTheScheduledLambdaAndSigma) {
  SmallCnn model = make_model();
  auto optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), 0.01);
  const auto options = DemonOptions(200).lambda_peak(0.4).sigma_peak(1e-3);
  DemonPruner pruner(model.ptr(), optimizer, options);
  const auto lambda = options.lambda_schedule();
  const auto sigma = options.sigma_schedule();
  const auto batch = demon::testing::small_batch();
  EXPECT_DOUBLE_EQ(pruner.current_lambda(), 0.4 / 25);
  for (int step = 0; step < 5; ++step) {
    EXPECT_EQ(pruner.current_step(), step);
    EXPECT_DOUBLE_EQ(pruner.current_lambda(), lambda(step));
    EXPECT_DOUBLE_EQ(pruner.current_sigma(), sigma(step));
    pruner.zero_grad();
    pruner.backward(torch::cross_entropy_loss(model->forward(batch.data), batch.target));
    pruner.step();
  }
  DemonPruner quiet(model.ptr(), optimizer, DemonOptions(options).noise(false));
  EXPECT_EQ(quiet.current_sigma(), 0.0);
}

TEST(PrunerTest, RejectsBadConstruction) {
  SmallCnn model = make_model();
  auto sgd = std::make_shared<torch::optim::SGD>(model->parameters(), 0.01);
  EXPECT_THROW(DemonPruner(nullptr, sgd, DemonOptions(10)), std::invalid_argument);
  EXPECT_THROW(DemonPruner(model.ptr(), nullptr, DemonOptions(10)), std::invalid_argument);
  try {
    DemonPruner(model.ptr(), sgd, DemonOptions());
    ADD_FAILURE() << "total_steps = 0 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("total_steps"), std::string::npos);
  }
  auto lbfgs = std::make_shared<torch::optim::LBFGS>(model->parameters());
  EXPECT_THROW(DemonPruner(model.ptr(), lbfgs, DemonOptions(10)), std::invalid_argument);
}

}  // namespace
