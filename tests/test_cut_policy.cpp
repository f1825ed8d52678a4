// What a prune event may cut (src/pruner/cut_policy.h): width floors, the collapse cap, and a
// strong λ that cannot take a layer below its floor.
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

TEST(GuardTest, FloorsCapsAndProtection) {
  auto model = small_resnet();
  auto optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), 0.01);
  DemonPruner pruner(model, optimizer,
                     DemonOptions(100)
                         .lambda_peak(0.0)
                         .noise(false)
                         .min_width_fraction(0.5)
                         .group_min_width({{"layer1_0.conv1", 7}})
                         .max_cut_fraction(0.02));
  train(pruner, model, 0, 1);
  const auto& graph = *pruner.graph();
  // Plant every unit of layer1_0.conv1 (8) and of layer2_0.conv1 (16) dead.
  for (const char* name : {"layer1_0.conv1", "layer2_0.conv1"}) {
    for (int64_t u : group_named(graph, name).units)
      plant_dead(graph, u);
  }
  pruner.prune_now();
  train(pruner, model, 1, 2);
  std::vector<std::string> warnings;
  auto previous = demon::set_warning_handler([&](const std::string& m) { warnings.push_back(m); });
  const auto report = pruner.prune_now();
  demon::set_warning_handler(previous);
  // 24 dead, but at most 2% of the live prunable units go at once.
  int64_t live = 0;
  for (size_t u = 0; u < graph.units().size(); ++u)
    live += graph.prunable(static_cast<int64_t>(u));
  EXPECT_GT(report.units_deferred, 0);
  ASSERT_FALSE(warnings.empty());
  EXPECT_NE(warnings[0].find("collapse guard"), std::string::npos) << warnings[0];
  // Floors: layer1_0.conv1 keeps 7 (its own floor), layer2_0.conv1 half its 16.
  for (int round = 0; round < 20; ++round) {
    train(pruner, model, 2 + round, 3 + round);
    pruner.prune_now();
  }
  EXPECT_EQ(model->blocks[0]->conv1->weight.size(0), 7);
  EXPECT_EQ(model->blocks[2]->conv1->weight.size(0), 8);
}

double narrowest(const demon::ModelSummary& summary) {
  double fraction = 1.0;
  for (const auto& layer : summary.layers)
    fraction = std::min(fraction, static_cast<double>(layer.current) / layer.initial);
  return fraction;
}

// A strong λ on SGD thins some layers to a fraction of their width. Given a floor an eighth above
// the narrowest layer of the free run, so that it must bind, the guarded run keeps every layer at
// it, still prunes, and trains (λ this strong costs accuracy on this task, guard or not: 0.7-1.0
// across initializations, chance is 0.25).
TEST(GuardTest, StrongLambdaKeepsEveryLayerAboveItsFloor) {
  struct Outcome {
    double accuracy, sparsity, narrowest;
  };
  auto run = [](double floor) {
    auto model = small_resnet(seed_from_env());
    auto optimizer = std::make_shared<torch::optim::SGD>(
        model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9));
    auto options = DemonOptions(150).lambda_peak(1.0).prune_every(25);
    if (floor > 0)
      options.min_width_fraction(floor).protect_floor(true).max_cut_fraction(0.5);
    DemonPruner pruner(model, optimizer, options);
    train_then_anneal<torch::optim::SGDOptions>(pruner, model, *optimizer, 150);
    const auto summary = pruner.summary();
    return Outcome{accuracy(model), summary.neural_sparsity(), narrowest(summary)};
  };
  const auto free = run(0.0);
  ASSERT_LT(free.narrowest, 0.75) << "this λ no longer thins any layer";
  const double floor = free.narrowest + 0.125;
  const auto guarded = run(floor);
  std::cout << "without the guard: accuracy " << free.accuracy << ", sparsity " << free.sparsity
            << ", narrowest layer " << free.narrowest << "; with a floor of " << floor << ": "
            << guarded.accuracy << ", " << guarded.sparsity << ", " << guarded.narrowest << "\n";
  EXPECT_GE(guarded.narrowest, floor);
  EXPECT_GT(guarded.sparsity, 0.0);
  EXPECT_LT(guarded.sparsity, free.sparsity);
  EXPECT_GT(guarded.accuracy, 0.6);
}

}  // namespace
