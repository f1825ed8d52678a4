// What discovery tells and takes from the user: unknown ops reported, element-wise ops declared,
// couplings and pins, a clear error without a graph, and describe().
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

// An op the walker does not know makes the channels it touches unprunable, by name.
struct FlipNet : TestModel {
  FlipNet() {
    c1 = register_module("c1", conv(3, 6));
    b1 = register_module("b1", torch::nn::BatchNorm2d(6));
    c2 = register_module("c2", conv(6, 4));
    b2 = register_module("b2", torch::nn::BatchNorm2d(4));
    head = register_module("head", torch::nn::Linear(4, 2));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(b1(c1(x))).flip({1});  // reorders channels
    x = torch::relu(b2(c2(x)));
    return head(x.mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 5, 5}); }
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::BatchNorm2d b1{nullptr}, b2{nullptr};
  torch::nn::Linear head{nullptr};
};

TEST(GraphTest, UnknownOpsPinTheirChannelsAndAreReported) {
  auto model = std::make_shared<FlipNet>();
  const auto graph = discover(model);
  ASSERT_EQ(graph.unknown_ops().count("Flip"), 1u);
  const auto& c1 = group_named(graph, "c1");
  EXPECT_EQ(prunable_in(graph, c1), 0);
  EXPECT_EQ(graph.units()[c1.units[0]].pin_reason, "unknown op Flip");
  // c2 reads the flipped tensor: its input side is unprunable, its outputs are fine.
  EXPECT_EQ(prunable_in(graph, group_named(graph, "c2")), 4);
  EXPECT_NE(graph.describe().find("unknown ops"), std::string::npos);
}

// A custom autograd function: the walker cannot know it is element-wise until told.
struct Triple : torch::autograd::Function<Triple> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, const torch::Tensor& x) {
    return x * 3;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                 torch::autograd::variable_list grads) {
    return {grads[0] * 3};
  }
};

struct CustomOpNet : TestModel {
  CustomOpNet() {
    c1 = register_module("c1", conv(3, 6));
    b1 = register_module("b1", torch::nn::BatchNorm2d(6));
    c2 = register_module("c2", conv(6, 4));
    head = register_module("head", torch::nn::Linear(4, 2));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = Triple::apply(torch::relu(b1(c1(x))));
    return head(torch::relu(c2(x)).mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 5, 5}); }
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::BatchNorm2d b1{nullptr};
  torch::nn::Linear head{nullptr};
};

TEST(GraphTest, UserDeclaredElementwiseOpsPassChannelsThrough) {
  auto model = std::make_shared<CustomOpNet>();
  const auto before = discover(model);
  ASSERT_EQ(before.unknown_ops().size(), 1u);
  const std::string op = before.unknown_ops().begin()->first;
  EXPECT_EQ(prunable_in(before, group_named(before, "c1")), 0);
  const auto after = discover(model, DiscoveryOptions().elementwise_op(op));
  EXPECT_TRUE(after.unknown_ops().empty());
  // Channels now flow through, but a custom op is not known to preserve zeros: still not
  // provably dead, so not prunable -- yet coupled correctly with c2's input.
  const auto& c1 = group_named(after, "c1");
  EXPECT_EQ(axis_names(after, c1).count("c2.weight[1]"), 1u);
  EXPECT_FALSE(after.units()[c1.units[0]].observable);
}

TEST(GraphTest, ExplicitCouplingAndPinning) {
  auto model = std::make_shared<ResNet>(Block::Shortcut::kSelection);
  const auto coupled = discover(
      model, DiscoveryOptions().couple("block1.conv1.weight", 0, "block2.conv1.weight", 0));
  const auto& merged = group_named(coupled, "block1.conv1");
  EXPECT_EQ(merged.units.size(), 8u);
  EXPECT_EQ(axis_names(coupled, merged).count("block2.conv1.weight[0]"), 1u);
  EXPECT_NE(merged.name.find("+1 coupled"), std::string::npos);

  const auto pinned = discover(model, DiscoveryOptions().pin("block1.bn1.weight"));
  const auto& block1 = group_named(pinned, "block1.conv1");
  EXPECT_EQ(prunable_in(pinned, block1), 0);
  EXPECT_EQ(pinned.units()[block1.units[0]].pin_reason, "pinned by DiscoveryOptions");

  EXPECT_THROW(discover(model, DiscoveryOptions().pin("no.such.tensor")), std::invalid_argument);
  EXPECT_THROW(discover(model, DiscoveryOptions().couple("stem.weight", 0, "head.weight", 0)),
               std::invalid_argument);  // 8 vs 5 channels
}

TEST(GraphTest, RootWithoutGraphIsAClearError) {
  auto model = std::make_shared<VggNet>();
  torch::Tensor out;
  {
    torch::NoGradGuard no_grad;
    out = model->forward(model->example_input(2));
  }
  try {
    DependencyGraph::discover(*model, out);
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no autograd graph"), std::string::npos);
  }
}

TEST(GraphTest, SummaryNamesLayersGroupsAndReasons) {
  auto model = std::make_shared<ResNet>(Block::Shortcut::kSelection);
  const std::string text = discover(model).describe();
  for (const char* expected :
       {"DependencyGraph:", "block1.shortcut  ChannelSelection", "#0 stem: 8/8 units, 8 prunable",
        "pinned (model output)", "block1.shortcut(out)"}) {
    EXPECT_NE(text.find(expected), std::string::npos) << expected << "\n" << text;
  }
}

}  // namespace

namespace {}  // namespace
