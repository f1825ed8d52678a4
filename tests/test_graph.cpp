// Discovery on the test models: which channels each layer and op couples, pins or passes
// through, and what each unit costs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "demon/graph.h"
#include "demon/surgery.h"
#include "graph_queries.h"
#include "graph_support.h"
#include "models.h"

namespace {

using demon::DependencyGraph;
using demon::DiscoveryOptions;
using namespace demon::testing;

TEST(GraphTest, VggChainFlattenAndHead) {
  auto model = std::make_shared<VggNet>();
  const auto graph = discover(model);
  const auto& c1 = group_named(graph, "c1");
  EXPECT_EQ(c1.units.size(), 8u);
  EXPECT_EQ(prunable_in(graph, c1), 8);
  EXPECT_EQ(axis_names(graph, c1),
            (std::set<std::string>{"c1.weight[0]", "b1.weight[0]", "b1.bias[0]",
                                   "b1.running_mean[0]", "b1.running_var[0]", "c2.weight[1]"}));
  EXPECT_EQ(axis_names(graph, group_named(graph, "c2")).count("c2.bias[0]"), 1u);
  // c3's channels reach fc1 through flatten: each channel owns 16 consecutive features.
  const auto& c3 = group_named(graph, "c3");
  const int fc1 = graph.find_tensor("fc1.weight");
  for (const auto& axis : graph.axes()) {
    if (axis.tensor == fc1 && axis.dim == 1) {
      ASSERT_EQ(axis.owner.size(), 160u);
      for (size_t k = 0; k < 160; ++k)
        EXPECT_EQ(axis.owner[k], c3.units[k / 16]) << k;
    }
  }
  // fc1's units are read through ReLU and dropout: prunable. The head's outputs are not.
  EXPECT_EQ(prunable_in(graph, group_named(graph, "fc1")), 20);
  const auto& head = group_named(graph, "fc2");
  EXPECT_EQ(prunable_in(graph, head), 0);
  EXPECT_TRUE(graph.units()[head.units[0]].pinned);
  // The input image's channels are never prunable.
  EXPECT_EQ(graph.units()[group_named(graph, "c1.weight").units[0]].pin_reason, "network input");
  EXPECT_TRUE(graph.unknown_ops().empty());
  EXPECT_EQ(graph.sites().size(), 4u);
  // FLOPs: 2 · (8·27·256 + 12·72·64 + 10·108·16 + 20·160 + 5·20) per sample.
  EXPECT_EQ(graph.flops(), 262344);
}

TEST(GraphTest, ModelOutputIsPinnedWhenTheRootIsTheOutput) {
  auto model = std::make_shared<VggNet>();
  const auto graph = discover(model);
  const auto& head = group_named(graph, "fc2");
  EXPECT_EQ(graph.units()[head.units[0]].pin_reason, "model output");
}

TEST(GraphTest, BareResidualAddsCoupleTheWholeStage) {
  auto model = std::make_shared<ResNet>(Block::Shortcut::kBare);
  const auto graph = discover(model);
  const auto& stage = group_named(graph, "stem");
  EXPECT_EQ(stage.units.size(), 8u);
  EXPECT_EQ(prunable_in(graph, stage), 8);
  const auto names = axis_names(graph, stage);
  for (const char* expected : {"stem.weight[0]", "block1.conv2.weight[0]", "block1.bn2.weight[0]",
                               "block2.conv2.weight[0]", "block2.conv1.weight[1]",
                               "block3.conv1.weight[1]", "block3.proj.weight[1]"}) {
    EXPECT_EQ(names.count(expected), 1u) << expected;
  }
  // The projection block's output is coupled with its projection shortcut.
  const auto& last = group_named(graph, "block3.conv2");
  EXPECT_EQ(axis_names(graph, last).count("block3.proj_bn.weight[0]"), 1u);
  EXPECT_NE(last.name.find("+1 coupled"), std::string::npos);
}

TEST(GraphTest, SelectionShortcutsMakeEachBlockIndependent) {
  auto model = std::make_shared<ResNet>(Block::Shortcut::kSelection);
  const auto graph = discover(model);
  const auto& stem = group_named(graph, "stem");
  EXPECT_EQ(axis_names(graph, stem),
            (std::set<std::string>{"stem.weight[0]", "stem_bn.weight[0]", "stem_bn.bias[0]",
                                   "stem_bn.running_mean[0]", "stem_bn.running_var[0]",
                                   "block1.conv1.weight[1]", "block1.shortcut(in)"}));
  const auto& block1 = group_named(graph, "block1.conv2");
  EXPECT_EQ(axis_names(graph, block1),
            (std::set<std::string>{"block1.conv2.weight[0]", "block1.bn2.weight[0]",
                                   "block1.bn2.bias[0]", "block1.bn2.running_mean[0]",
                                   "block1.bn2.running_var[0]", "block1.shortcut(out)",
                                   "block2.conv1.weight[1]", "block2.shortcut(in)"}));
  EXPECT_EQ(prunable_in(graph, block1), 8);
  EXPECT_EQ(prunable_in(graph, group_named(graph, "block2.conv2")), 8);
}

TEST(GraphTest, ConcatenationKeepsEachBranchAtItsOffset) {
  auto model = std::make_shared<ConcatNet>();
  const auto graph = discover(model);
  const auto& a = group_named(graph, "a");
  const auto& b = group_named(graph, "b");
  const int mix = graph.find_tensor("mix.weight");
  bool seen = false;
  for (const auto& axis : graph.axes()) {
    if (axis.tensor == mix && axis.dim == 1) {
      seen = true;
      ASSERT_EQ(axis.owner.size(), 10u);
      for (size_t k = 0; k < 6; ++k)
        EXPECT_EQ(axis.owner[k], a.units[k]);
      for (size_t k = 0; k < 4; ++k)
        EXPECT_EQ(axis.owner[6 + k], b.units[k]);
    }
  }
  EXPECT_TRUE(seen);
  EXPECT_EQ(prunable_in(graph, a), 6);
  EXPECT_EQ(prunable_in(graph, b), 4);
}

// relu(a(x)) + bn(b(x)), read by a convolution: a channel whose ReLU is dead still carries
// b's output through the sum, so its death cannot be seen at the ReLU alone.
struct SumOfActivationAndLinear : TestModel {
  SumOfActivationAndLinear() {
    a = register_module("a", conv(3, 6));
    b = register_module("b", conv(3, 6));
    bn = register_module("bn", nn::BatchNorm2d(6));
    c = register_module("c", conv(6, 4));
    head = register_module("head", nn::Linear(4, 2));
  }
  torch::Tensor forward(torch::Tensor x) override {
    auto y = torch::relu(a(x)) + bn(b(x));
    return head(torch::relu(c(y)).mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 8, 8}); }
  nn::Conv2d a{nullptr}, b{nullptr}, c{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::Linear head{nullptr};
};

TEST(GraphTest, ASumIsZeroOnlyWhereEveryTermIs) {
  auto model = std::make_shared<SumOfActivationAndLinear>();
  const auto graph = discover(model);
  const auto& sum = group_named(graph, "a (+1 coupled)");
  EXPECT_EQ(axis_names(graph, sum).count("b.weight[0]"), 1u);
  EXPECT_EQ(prunable_in(graph, sum), 0);
  EXPECT_FALSE(graph.units()[sum.units[0]].observable);
  EXPECT_EQ(prunable_in(graph, group_named(graph, "c")), 4);
}

TEST(GraphTest, PixelShuffleMakesBlocksOfChannelsOneUnit) {
  auto model = std::make_shared<PixelShuffleNet>();
  const auto graph = discover(model);
  const auto& c1 = group_named(graph, "c1");
  const auto& c2 = group_named(graph, "c2");
  EXPECT_EQ(c1.units.size(), 4u);
  EXPECT_EQ(prunable_in(graph, c1), 4);
  EXPECT_EQ(prunable_in(graph, c2), 6);
  const auto c1_owners = owners_of(graph, "c1.weight", 0);
  ASSERT_EQ(c1_owners.size(), 16u);
  for (size_t k = 0; k < 16; ++k)
    EXPECT_EQ(c1_owners[k], c1.units[k / 4]) << k;
  const auto c3_owners = owners_of(graph, "c3.weight", 1);
  ASSERT_EQ(c3_owners.size(), 24u);
  for (size_t k = 0; k < 24; ++k)
    EXPECT_EQ(c3_owners[k], c2.units[k / 4]) << k;
  EXPECT_TRUE(graph.unknown_ops().empty());
}

TEST(GraphTest, TransposedConvolutionsCarryOutputsOnWeightDim1) {
  auto model = std::make_shared<ConvTransposeNet>();
  const auto graph = discover(model);
  EXPECT_EQ(axis_names(graph, group_named(graph, "c1")),
            (std::set<std::string>{"c1.weight[0]", "bn1.weight[0]", "bn1.bias[0]",
                                   "bn1.running_mean[0]", "bn1.running_var[0]", "up.weight[0]"}));
  EXPECT_EQ(axis_names(graph, group_named(graph, "up")),
            (std::set<std::string>{"up.weight[1]", "up.bias[0]", "bn2.weight[0]", "bn2.bias[0]",
                                   "bn2.running_mean[0]", "bn2.running_var[0]", "c2.weight[1]"}));
  // Depthwise: each c2 channel goes with the transposed conv's channel it feeds.
  const auto& c2 = group_named(graph, "c2");
  EXPECT_EQ(axis_names(graph, c2), (std::set<std::string>{"c2.weight[0]", "grouped.weight[0]",
                                                          "grouped.bias[0]", "head.weight[1]"}));
  EXPECT_EQ(prunable_in(graph, group_named(graph, "c1")), 8);
  EXPECT_EQ(prunable_in(graph, group_named(graph, "up")), 6);
  EXPECT_EQ(prunable_in(graph, c2), 4);
  // A transposed convolution applies each weight once per input position: 2 · (c1 216·36 +
  // up 192·36 + c2 216·144 + grouped 36·144 + head 12).
  EXPECT_EQ(graph.flops(), 2 * (216 * 36 + 192 * 36 + 216 * 144 + 36 * 144 + 12));
}

// unit_flops() equals flops() - flops_without({u}) for every unit, before and after a cut.
template <typename Model>
void expect_unit_flops_match_one_at_a_time(std::shared_ptr<Model> model, const std::string& label) {
  auto graph = discover(model);
  auto check = [&](const std::string& when) {
    const auto saving = graph.unit_flops();
    ASSERT_EQ(saving.size(), graph.units().size()) << label;
    int64_t saving_units = 0;
    for (size_t u = 0; u < saving.size(); ++u) {
      const int64_t expected = graph.flops() - graph.flops_without({static_cast<int64_t>(u)});
      EXPECT_EQ(saving[u], expected) << label << ", " << when << ": unit " << u;
      saving_units += saving[u] > 0;
    }
    EXPECT_GT(saving_units, 0) << label << ", " << when;
  };
  check("as discovered");
  std::vector<int64_t> cut;  // every other prunable unit of each group
  for (const auto& group : graph.groups()) {
    for (size_t i = 0; i < group.units.size(); i += 2) {
      if (graph.prunable(group.units[i]))
        cut.push_back(group.units[i]);
    }
  }
  ASSERT_FALSE(cut.empty()) << label;
  ASSERT_FALSE(demon::prune_units(graph, cut, nullptr).removed.empty()) << label;
  check("after a cut");
  for (int64_t u : cut) {
    if (graph.units()[u].removed) {
      EXPECT_EQ(graph.unit_flops()[u], 0) << label << ": removed unit " << u;
    }
  }
}

// A unit on many weights (a residual stage coupled by bare adds), on both dims of one weight
// (depthwise and grouped convolutions), on a transposed convolution's dim 1, on linear layers and
// on 1-D and 3-D convolutions.
TEST(GraphTest, UnitFlopsIsWhatRemovingEachUnitAloneSaves) {
  expect_unit_flops_match_one_at_a_time(std::make_shared<ResNet>(Block::Shortcut::kBare),
                                        "ResNet, bare adds");
  expect_unit_flops_match_one_at_a_time(std::make_shared<ResNet>(Block::Shortcut::kProjection),
                                        "ResNet, projections");
  expect_unit_flops_match_one_at_a_time(std::make_shared<DepthwiseNet>(), "DepthwiseNet");
  expect_unit_flops_match_one_at_a_time(std::make_shared<ConvTransposeNet>(), "ConvTransposeNet");
  expect_unit_flops_match_one_at_a_time(std::make_shared<GroupNormNet>(), "GroupNormNet");
  expect_unit_flops_match_one_at_a_time(std::make_shared<TransformerBlock>(), "TransformerBlock");
  expect_unit_flops_match_one_at_a_time(std::make_shared<Conv1dNet>(), "Conv1dNet");
  expect_unit_flops_match_one_at_a_time(std::make_shared<Conv3dNet>(), "Conv3dNet");
}

// unit_activations(): per unit, its channels' elements per sample at every activation read, in
// maps of the sizes the models' shapes give; 0 once cut, the others unchanged.
template <typename Model>
void expect_unit_activations(std::shared_ptr<Model> model,
                             const std::map<std::string, int64_t>& per_group,
                             const std::string& label) {
  auto graph = discover(model);
  const auto before = graph.unit_activations();
  ASSERT_EQ(before.size(), graph.units().size()) << label;
  std::vector<int64_t> cut;
  for (const auto& [name, elements] : per_group) {
    const auto& group = group_named(graph, name);
    ASSERT_FALSE(group.units.empty()) << label << ": " << name;
    for (int64_t u : group.units)
      EXPECT_EQ(before[u], elements) << label << ": " << name << ", unit " << u;
    if (graph.prunable(group.units.front()))
      cut.push_back(group.units.front());
  }
  ASSERT_FALSE(cut.empty()) << label;
  ASSERT_EQ(demon::prune_units(graph, cut, nullptr).removed.size(), cut.size()) << label;
  const auto after = graph.unit_activations();
  for (size_t u = 0; u < after.size(); ++u) {
    const bool removed = graph.units()[u].removed;
    EXPECT_EQ(after[u], removed ? 0 : before[u]) << label << ", after a cut: unit " << u;
  }
}

TEST(GraphTest, UnitActivationsCountEachUnitsElementsAtTheActivations) {
  // 16×16 before the first pool, 8×8, 4×4, then one feature per sample.
  expect_unit_activations(std::make_shared<VggNet>(),
                          {{"c1", 256}, {"c2", 64}, {"c3", 16}, {"fc1", 1}}, "VggNet");
  // 8×8 maps; the stream of bare adds is read after the stem and after each of the two blocks
  // it runs through (3 · 64); the strided block works at 4×4.
  expect_unit_activations(
      std::make_shared<ResNet>(Block::Shortcut::kBare),
      {{"stem", 192}, {"block1.conv1", 64}, {"block2.conv1", 64}, {"block3.conv1", 16}},
      "ResNet, bare adds");
  // The hidden units of the MLP, one GELU output per token (5).
  expect_unit_activations(std::make_shared<TransformerBlock>(), {{"fc1", 5}}, "TransformerBlock");
  expect_unit_activations(std::make_shared<Conv1dNet>(), {{"c1", 16}, {"c2", 16}}, "Conv1dNet");
  expect_unit_activations(std::make_shared<Conv3dNet>(), {{"c1", 64}, {"c2", 64}}, "Conv3dNet");
  // A GroupNorm unit is a group of 3 channels of a 6×6 map.
  expect_unit_activations(std::make_shared<GroupNormNet>(), {{"c1", 108}, {"c2", 36}},
                          "GroupNormNet");
}

// Sequence first, [L = 5, N = 4, 16]: the batch is not the leading dim of the activations.
struct SequenceFirstMlp : TestModel {
  SequenceFirstMlp() {
    fc1 = register_module("fc1", torch::nn::Linear(16, 32));
    fc2 = register_module("fc2", torch::nn::Linear(32, 3));
  }
  torch::Tensor forward(torch::Tensor x) override { return fc2(torch::gelu(fc1(x))).mean(0); }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({5, batch, 16}); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

TEST(GraphTest, UnitActivationsAreCountedPerSampleWhereverTheBatchIs) {
  auto model = std::make_shared<SequenceFirstMlp>();
  // From the model's output [N, 3] the batch is known: 5 tokens per unit and sample.
  auto graph = discover(model);
  EXPECT_EQ(graph.unit_activations()[group_named(graph, "fc1").units[0]], 5);
  // From a loss, the first op's output (fc1's [20, 32], tokens and samples flattened) would pass
  // for the batch and give 1; given, the batch size makes it right again.
  const auto loss = model->forward(model->example_input(4)).pow(2).sum();
  graph = DependencyGraph::discover(*model, loss, DiscoveryOptions().batch_size(4));
  EXPECT_EQ(graph.unit_activations()[group_named(graph, "fc1").units[0]], 5);
}

TEST(GraphTest, BatchNormWithoutAffineIsFoundByItsRunningStatistics) {
  auto model = std::make_shared<NoAffineNormNet>();
  const auto graph = discover(model);
  const auto& c1 = group_named(graph, "c1");
  EXPECT_EQ(axis_names(graph, c1), (std::set<std::string>{"c1.weight[0]", "bn1.running_mean[0]",
                                                          "bn1.running_var[0]", "c2.weight[1]"}));
  EXPECT_EQ(prunable_in(graph, c1), 8);
  bool listed = false;
  for (const auto& layer : graph.layers())
    listed = listed || (layer.name == "bn1" && layer.kind == demon::LayerKind::kBatchNorm);
  EXPECT_TRUE(listed);
}

TEST(GraphTest, DepthwiseConvolutionCouplesItsInputsAndOutputs) {
  auto model = std::make_shared<DepthwiseNet>();
  const auto graph = discover(model);
  const auto& expand = group_named(graph, "expand");
  const auto names = axis_names(graph, expand);
  EXPECT_EQ(names.count("depthwise.weight[0]"), 1u);
  EXPECT_EQ(names.count("depthwise_bn.weight[0]"), 1u);
  EXPECT_EQ(names.count("project.weight[1]"), 1u);
  EXPECT_EQ(names.count("depthwise.weight[1]"), 0u);  // per-group, never sliced
  EXPECT_EQ(prunable_in(graph, expand), 12);
}

TEST(GraphTest, LayerNormInputsAreUnprunable) {
  auto model = std::make_shared<LayerNormMlp>();
  const auto graph = discover(model);
  const auto& fc1 = group_named(graph, "fc1");
  EXPECT_EQ(prunable_in(graph, fc1), 0);
  EXPECT_NE(graph.units()[fc1.units[0]].pin_reason.find("LayerNorm"), std::string::npos);
  EXPECT_EQ(prunable_in(graph, group_named(graph, "fc2")), 24);
}

TEST(GraphTest, TransformerBlockOnlyMlpHiddenUnitsArePrunable) {
  auto model = std::make_shared<TransformerBlock>();
  const auto graph = discover(model);
  int64_t prunable = 0;
  for (size_t u = 0; u < graph.units().size(); ++u)
    prunable += graph.prunable(u);
  const auto& hidden = group_named(graph, "fc1");
  EXPECT_EQ(prunable_in(graph, hidden), 32);
  EXPECT_EQ(prunable, 32);
  EXPECT_EQ(axis_names(graph, hidden),
            (std::set<std::string>{"fc1.weight[0]", "fc1.bias[0]", "fc2.weight[1]"}));
  ASSERT_EQ(graph.sites().size(), 1u);
  EXPECT_EQ(graph.sites()[0].kind, demon::ActivationKind::kGelu);
  // Linear FLOPs count every token: 2 · 5 tokens · (48·16 + 16·16 + 32·16 + 16·32) + 2 · 3·16.
  EXPECT_EQ(graph.flops(), 2 * 5 * (768 + 256 + 512 + 512) + 2 * 48);
}

TEST(GraphTest, MultiheadAttentionBlockOnlyMlpHiddenUnitsArePrunable) {
  auto model = std::make_shared<AttentionBlock>();
  const auto graph = discover(model);
  int64_t prunable = 0;
  for (size_t u = 0; u < graph.units().size(); ++u)
    prunable += graph.prunable(u);
  const auto& hidden = group_named(graph, "fc1");
  EXPECT_EQ(prunable_in(graph, hidden), 32);
  EXPECT_EQ(prunable, 32) << graph;
  EXPECT_EQ(axis_names(graph, hidden),
            (std::set<std::string>{"fc1.weight[0]", "fc1.bias[0]", "fc2.weight[1]"}));
}

// LibTorch runs InstanceNorm as a BatchNorm over [1, N·C, ...] with its tensors repeated N times:
// the channels, tiled once per sample, still go with their own weight, bias and statistics.
TEST(GraphTest, InstanceNormChannelsGoWithTheirCopiesPerSample) {
  for (const bool track : {false, true}) {
    auto model = std::make_shared<InstanceNormNet>(/*affine=*/true, track);
    for (const int64_t batch : {1, 4}) {
      const auto graph =
          DependencyGraph::discover(*model, model->forward(model->example_input(batch)));
      const auto& first = group_named(graph, "c1");
      EXPECT_EQ(prunable_in(graph, first), 8) << "batch " << batch << " track " << track << "\n"
                                              << graph;
      std::set<std::string> expected = {"c1.weight[0]", "norm.weight[0]", "norm.bias[0]",
                                        "c2.weight[1]"};
      if (track)
        expected.insert({"norm.running_mean[0]", "norm.running_var[0]"});
      EXPECT_EQ(axis_names(graph, first), expected);
      EXPECT_EQ(prunable_in(graph, group_named(graph, "c2")), 6);
      EXPECT_TRUE(std::any_of(graph.layers().begin(), graph.layers().end(), [](const auto& layer) {
        return layer.name == "norm" && layer.kind == demon::LayerKind::kInstanceNorm;
      }));
    }
  }
}

// Without affine parameters: with no running statistics each sample's channel is normalized
// alone, so the channels pass (an all-zero one stays zero, so c1's ReLU still shows deaths);
// with running statistics nothing names the module (its repeated copies are what the node saw),
// so the channels stay, with a reason.
TEST(GraphTest, InstanceNormWithoutAffineParameters) {
  for (const bool track : {false, true}) {
    auto model = std::make_shared<InstanceNormNet>(/*affine=*/false, track);
    const auto graph = DependencyGraph::discover(*model, model->forward(model->example_input(4)));
    const auto& first = group_named(graph, "c1");
    EXPECT_EQ(prunable_in(graph, first), track ? 0 : 8) << "track " << track << "\n" << graph;
    if (track) {
      EXPECT_NE(graph.units()[first.units[0]].pin_reason.find("InstanceNorm"), std::string::npos)
          << graph.units()[first.units[0]].pin_reason;
    } else {
      EXPECT_EQ(axis_names(graph, first), (std::set<std::string>{"c1.weight[0]", "c2.weight[1]"}));
    }
    EXPECT_EQ(prunable_in(graph, group_named(graph, "c2")), 6);
  }
}

// A frozen weight or bias (requires_grad false) reaches the op as a constant, not as the layer's
// parameter: it would not be sliced with the channels, so they stay.
TEST(GraphTest, FrozenLayerTensorsPinTheirChannels) {
  for (const std::string frozen : {"", "0.bias", "1.weight", "1.bias"}) {
    torch::nn::Sequential model(conv(3, 6, 3, 1, /*bias=*/true), torch::nn::BatchNorm2d(6),
                                torch::nn::ReLU(), conv(6, 4), torch::nn::ReLU(),
                                torch::nn::AdaptiveAvgPool2d(1), torch::nn::Flatten(),
                                torch::nn::Linear(4, 2));
    if (!frozen.empty())
      model->named_parameters()[frozen].set_requires_grad(false);
    const auto graph =
        DependencyGraph::discover(*model, model->forward(torch::randn({2, 3, 6, 6})));
    int64_t prunable = 0;
    for (size_t u = 0; u < graph.units().size(); ++u)
      prunable += graph.prunable(u);
    // The first conv's 6 channels only when nothing is frozen; the second's 4 always.
    EXPECT_EQ(prunable, frozen.empty() ? 10 : 4) << frozen << "\n" << graph;
    EXPECT_EQ(prunable_in(graph, group_named(graph, "3")), 4) << frozen;
  }
}

// A Conv2d's weight used by conv_transpose2d has the other layout: not followed.
TEST(GraphTest, AWeightUsedByTheOtherKindOfConvolutionIsPinned) {
  struct Tied : torch::nn::Module {
    Tied() { encode = register_module("encode", conv(4, 4)); }
    torch::Tensor forward(torch::Tensor x) {
      auto h = torch::relu(encode(x));
      return torch::conv_transpose2d(h, encode->weight, {}, 1, 1);
    }
    torch::nn::Conv2d encode{nullptr};
  };
  auto model = std::make_shared<Tied>();
  const auto graph = DependencyGraph::discover(*model, model->forward(torch::randn({2, 4, 6, 6})));
  const auto& encode = group_named(graph, "encode");
  EXPECT_EQ(prunable_in(graph, encode), 0);
  EXPECT_NE(graph.units()[encode.units[0]].pin_reason.find("transposed"), std::string::npos)
      << graph;
}

TEST(GraphTest, GroupNormGroupsAreUnits) {
  auto model = std::make_shared<GroupNormNet>();
  const auto graph = discover(model);
  const auto& c1 = group_named(graph, "c1");
  ASSERT_EQ(c1.units.size(), 4u);  // 12 channels in 4 groups
  const int weight = graph.find_tensor("c1.weight");
  for (const auto& axis : graph.axes()) {
    if (axis.tensor == weight && axis.dim == 0) {
      for (size_t k = 0; k < 12; ++k)
        EXPECT_EQ(axis.owner[k], c1.units[k / 3]);
    }
  }
  EXPECT_EQ(prunable_in(graph, c1), 4);
}

TEST(GraphTest, PReluSlopesGoWithTheirChannels) {
  auto model = std::make_shared<PReluNet>();
  const auto graph = discover(model);
  const auto& c1 = group_named(graph, "c1");
  EXPECT_EQ(prunable_in(graph, c1), 8);
  const auto slope_owners = owners_of(graph, "act1.weight", 0);
  ASSERT_EQ(slope_owners.size(), 8u);
  EXPECT_EQ(slope_owners, owners_of(graph, "c1.weight", 0));
  EXPECT_TRUE(owners_of(graph, "act2.weight", 0).empty());  // shared: no channel axis
  EXPECT_TRUE(graph.unknown_ops().empty());
  const auto& layers = graph.layers();
  EXPECT_TRUE(std::any_of(layers.begin(), layers.end(), [](const auto& layer) {
    return layer.name == "act1" && layer.kind == demon::LayerKind::kPReLU;
  }));
}

// Autocast-style weight casts (ToCopy of a parameter) must not hide the layer behind them.
struct CastNet : demon::testing::TestModel {
  CastNet() {
    c1 = register_module("c1", demon::testing::conv(3, 6));
    b1 = register_module("b1", torch::nn::BatchNorm2d(6));
    fc = register_module("fc", torch::nn::Linear(6, 4));
  }
  torch::Tensor forward(torch::Tensor x) override {
    // What autocast does to a convolution and a linear layer, with a dtype round trip so that
    // it runs on CPU in float.
    auto w = c1->weight.to(torch::kDouble).to(torch::kFloat);
    auto h = torch::relu(b1(torch::conv2d(x, w, {}, 1, 1)));
    auto pooled = h.mean({2, 3});
    return torch::linear(pooled, fc->weight.to(torch::kDouble).to(torch::kFloat), fc->bias);
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 5, 5}); }
  torch::nn::Conv2d c1{nullptr};
  torch::nn::BatchNorm2d b1{nullptr};
  torch::nn::Linear fc{nullptr};
};

TEST(GraphTest, WeightCastsAreSeenThrough) {
  auto model = std::make_shared<CastNet>();
  torch::manual_seed(0);
  const auto graph =
      demon::DependencyGraph::discover(*model, model->forward(model->example_input(4)));
  const auto& c1 = demon::testing::group_named(graph, "c1");
  EXPECT_EQ(c1.units.size(), 6u);
  int64_t prunable = 0;
  for (int64_t u : c1.units)
    prunable += graph.prunable(u);
  EXPECT_EQ(prunable, 6) << graph;
}

}  // namespace
