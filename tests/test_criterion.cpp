// The death criteria (criterion.h): which units each picks from the evidence, and a user's own.
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
    EXPECT_EQ(report.criterion, kind == demon::CriterionKind::kDead ? "dead" : "quasi_dead");
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
  EXPECT_EQ(report.criterion, "every_other");
  EXPECT_EQ(model->blocks[7]->conv1->weight.size(0), width - (width + 1) / 2);
  EXPECT_THROW(pruner.set_criterion(nullptr), std::invalid_argument);
}

// ------------------------------------------------------------------------------ the guard

}  // namespace
