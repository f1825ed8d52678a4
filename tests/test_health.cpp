// The health guard: it backs λ off when the training loss climbs under the pressure.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "demon/demon.h"

namespace {

using demon::DemonOptions;
using demon::DemonPruner;
using demon::HealthGuard;

// Feeds `losses` one per step, checking every `every` steps from step 1 on, as DemonPruner does.
std::vector<int64_t> feed(HealthGuard& guard, const std::vector<double>& losses, int64_t every,
                          int64_t first_step = 0) {
  std::vector<int64_t> trips;
  for (size_t i = 0; i < losses.size(); ++i) {
    guard.observe(torch::tensor(static_cast<float>(losses[i])));
    const int64_t step = first_step + static_cast<int64_t>(i) + 1;
    if (step % every == 0 && guard.update(step, guard.measure()) != nullptr) {
      trips.push_back(step);
    }
  }
  return trips;
}

// A first loss of 2 (chance, say), then `steps` - 1 losses at `level`.
std::vector<double> learned(int64_t steps, double level) {
  std::vector<double> losses(static_cast<size_t>(steps), level);
  losses.front() = 2.0;
  return losses;
}

// A loss falling from 2.3 to 0.5 with ±15% batch noise.
std::vector<double> falling_loss(int64_t steps, uint64_t seed) {
  auto generator = torch::make_generator<torch::CPUGeneratorImpl>(seed);
  const auto noise = torch::rand({steps}, generator) * 0.3 - 0.15;
  std::vector<double> losses;
  for (int64_t i = 0; i < steps; ++i) {
    const double level = 0.5 + 1.8 * std::exp(-static_cast<double>(i) / 300.0);
    losses.push_back(level * (1.0 + noise[i].item<double>()));
  }
  return losses;
}

TEST(HealthGuardTest, AFallingNoisyLossNeverTrips) {
  for (uint64_t seed = 0; seed < 3; ++seed) {
    HealthGuard guard(0.25, 50, 0.5);
    EXPECT_TRUE(feed(guard, falling_loss(2000, seed), 25).empty()) << "seed " << seed;
    EXPECT_EQ(guard.lambda_factor(), 1.0);
    EXPECT_NEAR(guard.baseline(), 0.5, 0.05);
  }
}

TEST(HealthGuardTest, ARiseTripsHoldsLambdaAtZeroAndBacksOffAfterRecovery) {
  HealthGuard guard(0.25, 50, 0.5);
  // Learned from 2 to 1 in 200 steps, then 200 at 1.5 (half of it undone): trips once, at the
  // first check the average shows more than a quarter undone, and stays tripped.
  auto losses = learned(200, 1.0);
  losses.resize(400, 1.5);
  const auto trips = feed(guard, losses, 25);
  ASSERT_EQ(trips.size(), 1u);
  EXPECT_GT(trips[0], 200);
  EXPECT_LE(trips[0], 250);
  ASSERT_EQ(guard.events().size(), 1u);
  const auto& event = guard.events()[0];
  EXPECT_EQ(event.step, trips[0]);
  EXPECT_NEAR(event.baseline_loss, 1.0, 0.02);
  EXPECT_NEAR(event.first_loss, 2.0, 1e-6);
  EXPECT_GT(event.loss, 1.25);
  EXPECT_EQ(event.lambda_scale, 0.5);
  EXPECT_EQ(event.recovered_at, -1);
  EXPECT_TRUE(guard.tripped());
  EXPECT_EQ(guard.lambda_factor(), 0.0);

  // Back to 1.05 (within rise/2 of what was learned): recovered, λ at half from then on.
  feed(guard, std::vector<double>(300, 1.05), 25, 400);
  EXPECT_FALSE(guard.tripped());
  EXPECT_EQ(guard.lambda_factor(), 0.5);
  EXPECT_GT(guard.events()[0].recovered_at, 400);
  EXPECT_NE(guard.events()[0].describe().find("recovered at step"), std::string::npos);

  // A second rise halves it again.
  EXPECT_EQ(feed(guard, std::vector<double>(300, 2.0), 25, 700).size(), 1u);
  feed(guard, std::vector<double>(300, 1.0), 25, 1000);
  EXPECT_EQ(guard.lambda_factor(), 0.25);
  EXPECT_EQ(guard.events().size(), 2u);
}

TEST(HealthGuardTest, ARiseBelowTheThresholdDoesNotTrip) {
  HealthGuard guard(0.25, 50, 0.5);
  auto losses = learned(200, 1.0);
  losses.resize(600, 1.2);  // a fifth of what was learned
  EXPECT_TRUE(feed(guard, losses, 25).empty());
  EXPECT_EQ(guard.lambda_factor(), 1.0);
}

TEST(HealthGuardTest, RiseIsMeasuredAgainstWhatWasLearnedNotAgainstTheLoss) {
  // The same +50% of the loss: a model that learned from 2 to 0.1 lost 3% of it (no trip); one
  // that learned from 2 to 1.6 lost half of it (trips).
  HealthGuard low(0.25, 50, 0.5), high(0.25, 50, 0.5);
  auto fine = learned(200, 0.1);
  fine.resize(500, 0.15);
  auto stalled = learned(200, 1.6);
  stalled.resize(500, 1.8);
  EXPECT_TRUE(feed(low, fine, 25).empty());
  EXPECT_EQ(feed(high, stalled, 25).size(), 1u);
  EXPECT_TRUE(high.tripped());
}

TEST(HealthGuardTest, NothingLearnedNothingTrips) {
  // A loss that never falls below its first value gives nothing to measure against.
  HealthGuard guard(0.25, 10, 0.5);
  std::vector<double> losses(100, 1.0);
  losses.resize(200, 3.0);
  EXPECT_TRUE(feed(guard, losses, 5).empty());
}

TEST(HealthGuardTest, NothingCountsBeforeTheWindowHasPassed) {
  // The first losses are high and falling, then low: a settled average is the baseline.
  HealthGuard guard(0.25, 100, 0.5);
  std::vector<double> losses = {3.0, 0.5};
  losses.resize(99, 0.5);
  EXPECT_TRUE(feed(guard, losses, 1).empty());
  EXPECT_TRUE(std::isnan(guard.baseline()));
  EXPECT_EQ(guard.measure(), 0.0);
}

TEST(HealthGuardTest, NonFiniteLossesAreIgnored) {
  HealthGuard guard(0.25, 10, 0.5);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> losses = {nan, 2.0};
  for (int i = 0; i < 100; ++i) {
    losses.push_back(i % 7 == 0 ? std::numeric_limits<double>::infinity() : 1.0);
  }
  EXPECT_TRUE(feed(guard, losses, 5).empty());
  EXPECT_NEAR(guard.running_loss(), 1.0, 1e-3);  // finite, and where the finite losses lead
  EXPECT_NEAR(guard.first_loss(), 2.0, 1e-6);
}

TEST(HealthGuardTest, StateRoundTripsAndResumesTheSameDecisions) {
  auto losses = learned(200, 1.0);
  losses.resize(260, 1.6);
  HealthGuard whole(0.25, 50, 0.5);
  const auto expected = feed(
      whole,
      [&] {
        auto all = losses;
        all.resize(500, 1.6);
        return all;
      }(),
      25);

  HealthGuard first(0.25, 50, 0.5);
  auto trips = feed(first, losses, 25);
  ASSERT_EQ(trips.size(), 1u);
  HealthGuard resumed(0.25, 50, 0.5);
  resumed.load_json(nlohmann::json::parse(first.to_json().dump()));
  const auto rest = feed(resumed, std::vector<double>(240, 1.6), 25, 260);
  trips.insert(trips.end(), rest.begin(), rest.end());
  EXPECT_EQ(trips, expected);
  EXPECT_EQ(resumed.to_json().dump(), whole.to_json().dump());

  auto damaged = first.to_json();
  damaged["scale"] = 2.0;
  EXPECT_THROW(resumed.load_json(damaged), demon::ValueError);
  damaged = first.to_json();
  damaged["average"] = 1e300;  // beyond float32
  EXPECT_THROW(resumed.load_json(damaged), demon::ValueError);
  EXPECT_EQ(resumed.to_json().dump(), whole.to_json().dump());  // unchanged
}

TEST(HealthGuardTest, BadSettingsAreRefusedByName) {
  EXPECT_THROW(HealthGuard(0.0, 50, 0.5), demon::ValueError);
  EXPECT_THROW(HealthGuard(std::nan(""), 50, 0.5), demon::ValueError);
  EXPECT_THROW(HealthGuard(0.2, 0, 0.5), demon::ValueError);
  EXPECT_THROW(HealthGuard(0.2, 50, 1.0), demon::ValueError);
  for (const auto& [options, name] : std::vector<std::pair<DemonOptions, std::string>>{
           {DemonOptions(100).health_rise(-1.0), "health_rise"},
           {DemonOptions(100).health_rise(std::nan("")), "health_rise"},
           {DemonOptions(100).health_window(0), "health_window"},
           {DemonOptions(100).health_backoff(1.5), "health_backoff"}}) {
    try {
      options.validate();
      ADD_FAILURE() << name << " accepted";
    } catch (const demon::ValueError& error) {
      EXPECT_NE(std::string(error.what()).find(name), std::string::npos) << error.what();
    }
  }
}

// ------------------------------------------------------------------- a collapse on purpose

// Two hidden layers with BatchNorm on a task a linear teacher labels; learnable to a loss far
// below chance (ln 4) in a few hundred steps.
struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(16, 64));
    bn1 = register_module("bn1", torch::nn::BatchNorm1d(64));
    fc2 = register_module("fc2", torch::nn::Linear(64, 64));
    bn2 = register_module("bn2", torch::nn::BatchNorm1d(64));
    head = register_module("head", torch::nn::Linear(64, 4));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(bn1->forward(fc1->forward(x)));
    x = torch::relu(bn2->forward(fc2->forward(x)));
    return head->forward(x);
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, head{nullptr};
  torch::nn::BatchNorm1d bn1{nullptr}, bn2{nullptr};
};

struct CollapseRun {
  double final_loss = 0.0;  // mean of the last 50 steps
  std::vector<demon::HealthEvent> events;
  double final_lambda_factor = 1.0;
};

// λ rises from 0 over the first 300 steps (the model learns meanwhile), then stays far too strong
// for this model: without a guard the scales are crushed and the loss sits near chance.
CollapseRun collapse(bool guard, int64_t stop_at = 800,
                     torch::serialize::OutputArchive* saved = nullptr) {
  torch::manual_seed(0);
  auto model = std::make_shared<Mlp>();
  auto optimizer = std::make_shared<torch::optim::SGD>(
      model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  const int64_t steps = 800;
  DemonPruner pruner(model, optimizer,
                     DemonOptions(steps)
                         .regularizer(demon::Regularizer::kL2)
                         .lambda_peak(10.0)
                         .schedule(demon::ScheduleKind::kLinearWarmup)
                         .schedule_span(300)
                         .prune_every(100)
                         .health_guard(guard));
  auto generator = torch::make_generator<torch::CPUGeneratorImpl>(7);
  const auto teacher = torch::randn({16, 4}, generator);
  CollapseRun run;
  double tail = 0.0;
  for (int64_t step = 0; step < stop_at; ++step) {
    const auto x = torch::randn({64, 16}, generator);
    const auto y = x.matmul(teacher).argmax(1);
    pruner.zero_grad();
    auto loss = torch::cross_entropy_loss(model->forward(x), y);
    if (step >= steps - 50) {
      tail += loss.item<double>() / 50.0;
    }
    pruner.backward(loss);
    pruner.step();
  }
  if (saved != nullptr) {
    pruner.save(*saved);
  }
  run.final_loss = tail;
  run.events = pruner.summary().health_events;
  run.final_lambda_factor = pruner.health() ? pruner.health()->lambda_factor() : 1.0;
  return run;
}

TEST(HealthGuardTest, KeepsAModelDrivenToCollapseAwayFromChance) {
  const double chance = std::log(4.0);
  const CollapseRun unguarded = collapse(false);
  EXPECT_GT(unguarded.final_loss, 0.85 * chance) << "the pressure must collapse this model";
  EXPECT_TRUE(unguarded.events.empty());

  std::vector<std::string> warnings;
  auto previous = demon::set_warning_handler([&](const std::string& m) { warnings.push_back(m); });
  const CollapseRun guarded = collapse(true);
  demon::set_warning_handler(previous);
  EXPECT_LT(guarded.final_loss, 0.7 * chance);
  ASSERT_FALSE(guarded.events.empty());
  EXPECT_LT(guarded.final_lambda_factor, 1.0);
  const auto& first = guarded.events.front();
  EXPECT_GT(first.loss - first.baseline_loss, 0.25 * (first.first_loss - first.baseline_loss));
  EXPECT_NEAR(first.first_loss, chance, 0.2);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings.front().find("health guard"), std::string::npos) << warnings.front();
}

// A budget far behind its plan winds λ up until training suffers; once the loss has risen
// halfway to the guard's trip, the λ in force becomes the controller's ceiling, so that it stops
// climbing there (a fixed ceiling, 1000 times the start here, would not stop it).
TEST(HealthGuardTest, ARisingLossCapsTheBudget) {
  torch::manual_seed(0);
  auto model = std::make_shared<Mlp>();
  auto optimizer = std::make_shared<torch::optim::SGD>(
      model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
  const double lambda0 = 0.05, max_lambda = 1e3;
  DemonPruner pruner(model, optimizer,
                     DemonOptions(800)
                         .regularizer(demon::Regularizer::kL2)
                         .lambda_peak(lambda0)
                         .target(0.1)
                         .target_by(0.3)
                         .prune_every(100)
                         .controller_max_growth(16.0)
                         .controller_max_lambda(max_lambda));
  auto generator = torch::make_generator<torch::CPUGeneratorImpl>(7);
  const auto teacher = torch::randn({16, 4}, generator);
  double highest = 0.0, ceiling = lambda0 * max_lambda;
  int64_t capped_at = -1;
  bool tripped_first = false;
  for (int64_t step = 0; step < 800; ++step) {
    const auto x = torch::randn({64, 16}, generator);
    pruner.zero_grad();
    pruner.backward(torch::cross_entropy_loss(model->forward(x), x.matmul(teacher).argmax(1)));
    pruner.step();
    if (capped_at < 0 && pruner.budget()->ceiling() < lambda0 * max_lambda) {
      capped_at = step;
      ceiling = pruner.budget()->ceiling();
      tripped_first = !pruner.summary().health_events.empty();
    }
    highest = std::max(highest, pruner.budget()->lambda());
  }
  ASSERT_GE(capped_at, 0) << "the budget must raise this model's loss";
  EXPECT_FALSE(tripped_first);  // the ceiling came down before the guard had to trip
  EXPECT_GT(ceiling, lambda0);  // λ had grown before the loss rose
  EXPECT_LE(highest, ceiling);  // ... and never went past the λ in force then
  EXPECT_LE(pruner.budget()->ceiling(), ceiling);
}

TEST(HealthGuardTest, ACheckpointCarriesTheGuard) {
  torch::serialize::OutputArchive archive;
  const CollapseRun run = collapse(true, 300, &archive);
  ASSERT_FALSE(run.events.empty());
  std::stringstream bytes;
  archive.save_to(bytes);

  auto model = std::make_shared<Mlp>();
  auto optimizer =
      std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.05));
  DemonPruner resumed(model, optimizer,
                      DemonOptions(800)
                          .regularizer(demon::Regularizer::kL2)
                          .lambda_peak(10.0)
                          .schedule(demon::ScheduleKind::kLinearWarmup)
                          .schedule_span(300)
                          .prune_every(100));
  torch::serialize::InputArchive input;
  input.load_from(bytes);
  resumed.load(input);
  ASSERT_NE(resumed.health(), nullptr);
  EXPECT_EQ(resumed.health()->events().size(), run.events.size());
  EXPECT_EQ(resumed.health()->lambda_factor(), run.final_lambda_factor);
  EXPECT_EQ(resumed.summary().health_events.front().to_json(), run.events.front().to_json());
  EXPECT_EQ(resumed.current_lambda(),
            10.0 * run.final_lambda_factor);  // linear warm-up: at its peak from step 300
}

}  // namespace
