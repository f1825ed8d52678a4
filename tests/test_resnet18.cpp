#include <gtest/gtest.h>
#include <torch/torch.h>

#include "demon/graph.h"
#include "demon/surgery.h"
#include "graph_support.h"
#include "resnet.h"
#include "support.h"

namespace {

using resnet18_cifar10::ResNet18;
using resnet18_cifar10::ResNetOptions;

TEST(ResNet18Test, ReferenceShapeAndParameterCount) {
  ResNet18 model;
  // 11,173,962: the standard CIFAR ResNet-18 (3×3 stem, no max-pool) with a 10-way head.
  EXPECT_EQ(demon::testing::parameter_count(*model), 11173962);
  EXPECT_EQ(model->stem->weight.sizes(), (std::vector<int64_t>{64, 3, 3, 3}));
  EXPECT_EQ(model->blocks.size(), 8u);
  EXPECT_EQ(model->head->weight.sizes(), (std::vector<int64_t>{10, 512}));
  EXPECT_FALSE(model->blocks[0]->selection.is_empty());   // identity shortcut
  EXPECT_FALSE(model->blocks[2]->projection.is_empty());  // stage 2 entry: 1×1 conv + BN
  EXPECT_TRUE(model->blocks[2]->selection.is_empty());
  const auto out = model->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(ResNet18Test, WidthMultiplierScalesEveryStage) {
  ResNet18 model(ResNetOptions().width(0.25).num_classes(7));
  EXPECT_EQ(model->stem->weight.size(0), 16);
  EXPECT_EQ(model->blocks[7]->conv2->weight.size(0), 128);
  EXPECT_EQ(model->head->weight.sizes(), (std::vector<int64_t>{7, 128}));
  EXPECT_THROW(ResNet18(ResNetOptions().width(0.0)), c10::Error);
}

// With selection shortcuts every block's outputs form their own group; with bare adds a stage's
// residual channels are one coupled group.
TEST(ResNet18Test, GraphGroupsPerBlockOrPerStage) {
  for (bool selection : {true, false}) {
    torch::manual_seed(0);
    ResNet18 model(ResNetOptions().width(0.125).selection_shortcuts(selection));
    const auto graph =
        demon::DependencyGraph::discover(*model, model->forward(torch::randn({4, 3, 32, 32})));
    EXPECT_TRUE(graph.unknown_ops().empty());
    // Input, 8 conv1 groups, the head, and the residual channels: the stem plus 8 block outputs
    // (selection), or 4 stages, the first of which includes the stem (bare adds).
    EXPECT_EQ(graph.groups().size(), selection ? 1u + 8 + 1 + 9 : 1u + 8 + 1 + 4) << graph;
    int64_t prunable = 0;
    for (size_t u = 0; u < graph.units().size(); ++u)
      prunable += graph.prunable(u);
    // Every unit but the 3 input channels and 10 outputs.
    EXPECT_EQ(prunable, graph.live_units() - 13);
  }
}

TEST(ResNet18Test, PlantedDeadUnitsAreCutExactly) {
  demon::testing::DoublePrecision double_precision;
  torch::manual_seed(0);
  ResNet18 model(ResNetOptions().width(0.25));
  const auto x = torch::randn({4, 3, 32, 32});
  auto graph = demon::DependencyGraph::discover(*model, model->forward(x));
  std::vector<int64_t> units;
  for (size_t u = 0; u < graph.units().size(); u += 4) {
    if (graph.prunable(static_cast<int64_t>(u)))
      units.push_back(static_cast<int64_t>(u));
  }
  for (int64_t u : units)
    demon::testing::plant_dead(graph, u);
  const auto [train_before, eval_before] = demon::testing::outputs_train_eval(model, x);
  const auto result = demon::prune_units(graph, units);
  EXPECT_EQ(result.removed.size(), units.size());
  EXPECT_LT(result.parameters_after, result.parameters_before);
  const auto [train_after, eval_after] = demon::testing::outputs_train_eval(model, x);
  using demon::testing::kTwinAtol;
  using demon::testing::kTwinRtol;
  EXPECT_TRUE(torch::allclose(train_before, train_after, kTwinRtol, kTwinAtol));
  EXPECT_TRUE(torch::allclose(eval_before, eval_after, kTwinRtol, kTwinAtol));
}

}  // namespace
