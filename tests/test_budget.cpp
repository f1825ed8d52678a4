// Prune to a budget: death criteria, the collapse guard, and the λ controller.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
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

uint64_t seed_from_env() {  // DEMON_TEST_SEED, to check a test's margin across initializations
  const char* seed = std::getenv("DEMON_TEST_SEED");
  return seed ? std::strtoull(seed, nullptr, 10) : 0;
}

// Trains steps [0, steps) at the optimizer's lr, the last 50 at a tenth of it. Eval-mode accuracy
// at a constant lr of 1e-2 swings between neighbouring steps (BN's running statistics chase the
// weights), on some LibTorch versions from 1.0 to 0.75; annealing, as real training does, makes
// the final accuracy a property of the run rather than of its last step.
template <typename Options>
void train_then_anneal(DemonPruner& pruner, resnet18_cifar10::ResNet18& model,
                       torch::optim::Optimizer& optimizer, int64_t steps) {
  const int64_t anneal = std::min<int64_t>(50, steps / 2);
  train(pruner, model, 0, steps - anneal);
  for (auto& group : optimizer.param_groups()) {
    auto& options = static_cast<Options&>(group.options());
    options.lr(options.lr() * 0.1);
  }
  train(pruner, model, steps - anneal, steps);
}

// Accuracy of `model` on fresh synthetic batches of 64, normalized by their own statistics: BN's
// running statistics trail the weights by ~10 steps, and with large learning rates eval-mode
// accuracy swings between neighbouring steps (1.0 to 0.75 on this task) on some LibTorch versions.
double accuracy(resnet18_cifar10::ResNet18& model) {
  torch::NoGradGuard no_grad;
  int64_t correct = 0, seen = 0;
  for (int64_t b = 0; b < 4; ++b) {
    auto [images, labels] = synthetic_batch(10000 + b, 64);
    correct += model->forward(images).argmax(1).eq(labels).sum().item<int64_t>();
    seen += 64;
  }
  return static_cast<double>(correct) / static_cast<double>(seen);
}

// ------------------------------------------------------------------------------ criteria

// Evidence for VggNet with three kinds of c2 units: planted dead (0, 1), quiet (2: a constant
// 0.01 after ReLU), normal; and a small |γ| on unit 3.
struct Planted {
  std::shared_ptr<VggNet> model = std::make_shared<VggNet>();
  torch::Tensor x = model->example_input(8);
  demon::DependencyGraph graph = demon::DependencyGraph::discover(*model, model->forward(x));
  demon::UnitEvidence evidence;
  std::vector<int64_t> c2 = group_named(graph, "c2").units;

  Planted() {
    plant_dead(graph, c2[0]);
    plant_dead(graph, c2[1]);
    {
      torch::NoGradGuard no_grad;
      model->b2->weight[2] = 0.0;
      model->b2->bias[2] = 0.01;
      model->b2->weight[3] = 1e-4;
    }
    demon::ActivityTracker tracker;
    auto out = model->forward(x);
    EXPECT_TRUE(tracker.observe(graph, out, /*same_structure=*/false));
    evidence.graph = &graph;
    evidence.peak = tracker.unit_peaks(graph);
    evidence.scale = demon::unit_scales(graph);
  }
};

TEST(CriterionTest, DeadUnitsAreExactlyThePlantedOnes) {
  torch::manual_seed(0);
  Planted p;
  // The planted units, and any other whose activations were all zero on this batch.
  const auto dead = demon::DeadUnits().select(p.evidence);
  for (int64_t u : {p.c2[0], p.c2[1]})
    EXPECT_NE(std::find(dead.begin(), dead.end(), u), dead.end()) << u;
  for (size_t u = 0; u < p.graph.units().size(); ++u) {
    const bool selected = std::find(dead.begin(), dead.end(), u) != dead.end();
    EXPECT_EQ(selected, p.graph.prunable(static_cast<int64_t>(u)) && p.evidence.peak[u] == 0.0)
        << u;
  }
  // With epsilon above the quiet unit's constant 0.01, it is dead too.
  const auto loose = demon::DeadUnits(0.02).select(p.evidence);
  EXPECT_NE(std::find(loose.begin(), loose.end(), p.c2[2]), loose.end());
  EXPECT_THROW(demon::DeadUnits(-1.0), std::invalid_argument);
}

TEST(CriterionTest, QuasiDeadUnitsAreSmallAgainstTheirGroup) {
  torch::manual_seed(0);
  Planted p;
  const auto selected = demon::QuasiDeadUnits(0.05).select(p.evidence);
  for (int64_t u : {p.c2[0], p.c2[1], p.c2[2]})
    EXPECT_NE(std::find(selected.begin(), selected.end(), u), selected.end()) << u;
  // Only units at most 5% of their group's mean peak.
  for (int64_t u : selected) {
    const auto& group = p.graph.groups()[p.graph.units()[u].group];
    double sum = 0.0;
    int64_t n = 0;
    for (int64_t v : group.units) {
      if (p.graph.prunable(v) && std::isfinite(p.evidence.peak[v])) {
        sum += p.evidence.peak[v];
        ++n;
      }
    }
    EXPECT_LE(p.evidence.peak[u], 0.05 * sum / n);
  }
  EXPECT_FALSE(demon::QuasiDeadUnits(0.05).exact());
}

TEST(CriterionTest, SmallScalesRankOverTheWholeModel) {
  torch::manual_seed(0);
  Planted p;
  EXPECT_NEAR(p.evidence.scale[p.c2[3]], 1e-4, 1e-9);
  // The planted units have γ = 0, unit 3 has 1e-4: the threshold catches all four.
  const auto by_threshold = demon::SmallScales(1e-3, 0.0).select(p.evidence);
  for (int64_t u : {p.c2[0], p.c2[1], p.c2[2], p.c2[3]})
    EXPECT_NE(std::find(by_threshold.begin(), by_threshold.end(), u), by_threshold.end());
  // A fraction: that many of the prunable units with a scale, the smallest |γ| first.
  int64_t scaled = 0;
  for (size_t u = 0; u < p.graph.units().size(); ++u)
    scaled += p.graph.prunable(static_cast<int64_t>(u)) && !std::isnan(p.evidence.scale[u]);
  const auto quarter = demon::SmallScales(0.0, 0.25).select(p.evidence);
  EXPECT_EQ(static_cast<int64_t>(quarter.size()), scaled / 4);
  double largest_taken = 0.0, smallest_left = 1e9;
  for (size_t u = 0; u < p.graph.units().size(); ++u) {
    if (!p.graph.prunable(static_cast<int64_t>(u)) || std::isnan(p.evidence.scale[u]))
      continue;
    const bool taken = std::find(quarter.begin(), quarter.end(), u) != quarter.end();
    (taken ? largest_taken : smallest_left) = taken ? std::max(largest_taken, p.evidence.scale[u])
                                                    : std::min(smallest_left, p.evidence.scale[u]);
  }
  EXPECT_LE(largest_taken, smallest_left);
}

// The exact criterion changes no output; an inexact one reports what it changed.
TEST(CriterionTest, PrunerReportsTheOutputChange) {
  for (const auto kind : {demon::CriterionKind::kDead, demon::CriterionKind::kQuasiDead}) {
    auto model = small_resnet();
    auto optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), 0.01);
    DemonPruner pruner(model, optimizer,
                       DemonOptions(100).lambda_peak(0.0).noise(false).criterion(kind));
    train(pruner, model, 0, 1);
    const auto& graph = *pruner.graph();
    plant_dead(graph, unit_of(graph, "layer1_0.conv1", 1));
    {
      // A quiet unit: 0.05 everywhere after ReLU; only the quasi-dead rule takes it.
      torch::NoGradGuard no_grad;
      model->blocks[0]->bn1->weight[3] = 0.0;
      model->blocks[0]->bn1->bias[3] = 0.05;
    }
    pruner.prune_now();
    train(pruner, model, 1, 2);
    const auto report = pruner.prune_now();
    EXPECT_EQ(report.rule, kind == demon::CriterionKind::kDead ? "dead" : "quasi_dead");
    ASSERT_FALSE(std::isnan(report.output_change));
    if (kind == demon::CriterionKind::kDead) {
      EXPECT_TRUE(report.exact);
      EXPECT_EQ(report.units_removed, 1);
      EXPECT_LT(report.output_change, 1e-5);  // float rounding of other kernels only
    } else {
      EXPECT_FALSE(report.exact);
      EXPECT_GE(report.units_removed, 2);
      EXPECT_GT(report.output_change, 1e-4);
    }
    EXPECT_FALSE(report.to_json().at("output_change").is_null());
  }
}

// A user's criterion plugs in without touching the library.
struct EveryOtherUnit : demon::DeathCriterion {
  std::string name() const override { return "every_other"; }
  bool exact() const override { return false; }
  std::vector<int64_t> select(const demon::UnitEvidence& evidence) const override {
    std::vector<int64_t> units;
    for (const auto& g : evidence.graph->groups()) {
      if (g.name.rfind("layer4_1.conv1", 0) == 0) {
        for (size_t i = 0; i < g.units.size(); i += 2)
          units.push_back(g.units[i]);
      }
    }
    return units;
  }
};

TEST(CriterionTest, UserCriteriaPlugIn) {
  auto model = small_resnet();
  auto optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), 0.01);
  DemonPruner pruner(model, optimizer, DemonOptions(100).noise(false));
  pruner.set_criterion(std::make_shared<EveryOtherUnit>());
  train(pruner, model, 0, 1);
  const int64_t width = model->blocks[7]->conv1->weight.size(0);
  const auto report = pruner.prune_now();
  EXPECT_EQ(report.rule, "every_other");
  EXPECT_EQ(model->blocks[7]->conv1->weight.size(0), width - (width + 1) / 2);
  EXPECT_THROW(pruner.set_criterion(nullptr), std::invalid_argument);
}

// ------------------------------------------------------------------------------ the guard

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

// What one step adds to each normalization scale's gradient, divided by λ: sign(γ) times the
// push on each entry (the loss gradient is read before step() adds the pressure).
std::map<std::string, torch::Tensor> pushes(DemonPruner& pruner, resnet18_cifar10::ResNet18& model,
                                            double lambda) {
  auto [images, labels] = synthetic_batch(0);
  pruner.zero_grad();
  pruner.backward(torch::cross_entropy_loss(model->forward(images), labels));
  std::map<std::string, torch::Tensor> before;
  for (const auto& scale : demon::find_norm_scales(*model))
    before[scale.name] = scale.scale.grad().clone();
  pruner.step();
  std::map<std::string, torch::Tensor> push;
  for (const auto& scale : demon::find_norm_scales(*model))
    push[scale.name] = (scale.scale.grad() - before[scale.name]) / lambda;
  return push;
}

// A constant uniform λ of 0.5 and no noise: what step() adds to a gradient is the pressure alone.
DemonOptions constant_pressure() {
  return DemonOptions(100)
      .schedule(demon::ScheduleKind::kConstant)
      .lambda_peak(0.5)
      .pressure(demon::Pressure::kUniform)
      .noise(false);
}

TEST(GuardTest, ProtectedUnitsGetNoPressure) {
  auto model = small_resnet();
  auto optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), 0.0);
  DemonPruner pruner(model, optimizer, constant_pressure().min_width(2).protect_floor(true));
  const auto bn = model->blocks[0]->bn1;
  {
    torch::NoGradGuard no_grad;  // distinct |γ|, some negative: a ranking without ties
    bn->weight.copy_(torch::linspace(0.5, 1.2, 8) * torch::tensor({1, -1, 1, 1, -1, 1, -1, 1}));
  }
  // sign(γ) where pushed, 0 where not.
  const auto added = pushes(pruner, model, 0.5).at("layer1_0.bn1.weight");
  // The two largest |γ| of the group are exempt, the others pushed.
  const auto order = bn->weight.detach().abs().argsort(0, /*descending=*/true);
  for (int64_t i = 0; i < bn->weight.size(0); ++i) {
    const int64_t channel = order[i].item<int64_t>();
    const double expected = i < 2 ? 0.0 : bn->weight[channel].sign().item<double>();
    EXPECT_NEAR(added[channel].item<double>(), expected, 1e-6) << "rank " << i;
  }
}

// ------------------------------------------------------------------------------ the pressure

// pressure "flops": each prunable unit's entries are pushed by λ times what cutting the unit
// saves, over the prunable units' mean; units that cannot be cut (here a pinned layer) keep λ.
// "time" counts a saving as its FLOPs plus element_flops per activation element; "uniform"
// pushes every entry by λ. (γ = 1 everywhere at first, so pushes() gives the push.)
TEST(PressureTest, WeighedPressureIsInProportionToWhatACutSaves) {
  constexpr double kElementFlops = 288.0;
  for (const auto pressure :
       {demon::Pressure::kUniform, demon::Pressure::kFlops, demon::Pressure::kTime}) {
    auto model = small_resnet();
    auto optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), 0.0);
    DemonPruner pruner(model, optimizer,
                       constant_pressure().pressure(pressure).element_flops(kElementFlops));
    pruner.set_discovery_options(demon::DiscoveryOptions().pin("layer2_1.bn1.weight"));
    const auto push = pushes(pruner, model, 0.5);
    const auto& graph = *pruner.graph();
    const auto flops = graph.unit_flops();
    const auto elements = graph.unit_activations();
    std::vector<double> saving(flops.size());
    for (size_t u = 0; u < saving.size(); ++u) {
      saving[u] = static_cast<double>(flops[u]);
      if (pressure == demon::Pressure::kTime)
        saving[u] += kElementFlops * static_cast<double>(elements[u]);
    }
    double total = 0.0;
    int64_t prunable = 0;
    for (size_t u = 0; u < saving.size(); ++u) {
      if (graph.prunable(static_cast<int64_t>(u))) {
        total += saving[u];
        ++prunable;
      }
    }
    const double mean = total / static_cast<double>(prunable);
    std::map<std::string, double> push_of_group;  // the measured push on a unit of each group
    int64_t checked = 0, pinned = 0;
    for (const auto& axis : graph.axes()) {
      if (axis.tensor < 0 || axis.dim != 0 || !push.count(graph.tensors()[axis.tensor].name))
        continue;
      const auto& entries = push.at(graph.tensors()[axis.tensor].name);
      for (size_t i = 0; i < axis.owner.size(); ++i) {
        const int64_t unit = axis.owner[i];
        ASSERT_GE(unit, 0) << graph.tensors()[axis.tensor].name << "[" << i << "]";
        const bool weighed = pressure != demon::Pressure::kUniform && graph.prunable(unit);
        const double expected = weighed ? saving[unit] / mean : 1.0;
        pinned += !graph.prunable(unit);
        const double measured = entries[static_cast<int64_t>(i)].item<double>();
        EXPECT_NEAR(measured, expected, 1e-5 * expected)
            << graph.tensors()[axis.tensor].name << "[" << i << "], " << demon::to_string(pressure);
        push_of_group.emplace(graph.groups()[graph.units()[unit].group].name, measured);
        ++checked;
      }
    }
    EXPECT_GT(checked, 200);
    EXPECT_EQ(pinned, 16);  // layer2_1.bn1: 128 / 8 channels
    // A second-block unit of layer1 (8 channels at 16×16, one ReLU) against one of layer4 (64
    // channels at 2×2): FLOPs 2 · 2 · 9 · 8 · 256 = 73728 against 2 · 2 · 9 · 64 · 4 = 9216,
    // activation elements 256 against 4.
    const double layer1 = push_of_group.at("layer1_1.conv1");
    const double layer4 = push_of_group.at("layer4_1.conv1");
    double ratio = 1.0;
    if (pressure == demon::Pressure::kFlops)
      ratio = 73728.0 / 9216.0;
    if (pressure == demon::Pressure::kTime)
      ratio = (73728.0 + kElementFlops * 256) / (9216.0 + kElementFlops * 4);
    EXPECT_NEAR(layer1 / layer4, ratio, 1e-4 * ratio)
        << layer1 << " vs " << layer4 << ", " << demon::to_string(pressure);
  }
}

// Narrowest layer of `summary`, as a fraction of its initial width.
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

// ------------------------------------------------------------------------------ the budget

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
  d.set_state(c.state());
  EXPECT_EQ(d.reached_at(), 800);
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
  d.set_state(c.state());
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
  d.set_state(c.state());
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
