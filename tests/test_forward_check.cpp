// The forward check of a prune event (src/pruner/forward_check.h) on its own: the probe, why it
// cannot run, and a cut that breaks the forward, undone and narrowed down to its group.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "demon/demon.h"
#include "pruner/forward_check.h"

namespace {

// conv (4 channels) -> BN -> ReLU -> a reshape to a width, then a linear layer. With
// `fixed_width` the reshape's width is a literal, which any cut of the conv breaks.
struct ViewNet : torch::nn::Module {
  explicit ViewNet(bool fixed_width) : fixed(fixed_width) {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)));
    bn = register_module("bn", torch::nn::BatchNorm2d(4));
    fc = register_module("fc", torch::nn::Linear(4 * 6 * 6, 2));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(bn->forward(conv->forward(x)));
    return fc->forward(fixed ? x.view({x.size(0), 4 * 6 * 6}) : x.flatten(1));
  }
  bool fixed;
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::Linear fc{nullptr};
};

struct ProbedNet {
  explicit ProbedNet(bool fixed_width) : model(fixed_width) {
    torch::manual_seed(0);
    graph.emplace(demon::DependencyGraph::discover(model, model.forward(input)));
    for (const auto& group : graph->groups()) {
      if (group.name == "conv")
        units = {group.units[0], group.units[2]};
    }
  }
  demon::detail::Probe probe() {
    return [this](torch::Tensor* output) {
      return demon::detail::run_probe(model, forward, input, output);
    };
  }
  ViewNet model;
  torch::Tensor input = torch::randn({2, 3, 8, 8});
  demon::Forward forward = [this](const torch::Tensor& x) { return model.forward(x); };
  std::optional<demon::DependencyGraph> graph;
  std::vector<int64_t> units;  // two of conv's units
};

int64_t conv_width(const demon::DependencyGraph& graph) {
  for (const auto& group : graph.groups()) {
    if (group.name == "conv")
      return static_cast<int64_t>(group.units.size());
  }
  return -1;
}

TEST(ForwardCheckTest, TheProbeSaysWhyItCannotRun) {
  ProbedNet setup(/*fixed_width=*/false);
  EXPECT_EQ(demon::detail::probe_problem(setup.model, setup.forward, setup.input), "");
  EXPECT_NE(demon::detail::probe_problem(setup.model, nullptr, setup.input)
                .find("its forward is not known"),
            std::string::npos);
  EXPECT_NE(demon::detail::probe_problem(setup.model, setup.forward, torch::Tensor())
                .find("no input was found"),
            std::string::npos);
  const std::string wrong =
      demon::detail::probe_problem(setup.model, setup.forward, torch::randn({2, 5, 8, 8}));
  EXPECT_NE(wrong.find("does not run through the model even before the cut"), std::string::npos)
      << wrong;
  // The probe leaves the model in the mode it found.
  setup.model.train();
  setup.probe()(nullptr);
  EXPECT_TRUE(setup.model.is_training());
}

TEST(ForwardCheckTest, ACutThatKeepsTheForwardRunningIsKeptWithItsOutputChange) {
  ProbedNet setup(/*fixed_width=*/false);
  ASSERT_EQ(setup.units.size(), 2u);
  const auto cut = demon::detail::checked_cut(*setup.graph, setup.units, setup.model, nullptr,
                                              demon::PruneOptions(), setup.probe(),
                                              demon::ForwardCheck::kPin, 7);
  EXPECT_EQ(cut.result.removed.size(), 2u);
  EXPECT_TRUE(cut.broken.empty());
  EXPECT_TRUE(cut.warning.empty());
  EXPECT_EQ(setup.model.conv->weight.size(0), 2);
  EXPECT_EQ(setup.model.fc->weight.size(1), 2 * 6 * 6);
  // Live units were cut: the outputs moved, and the check measured by how much.
  EXPECT_TRUE(std::isfinite(cut.output_change));
  EXPECT_GT(cut.output_change, 0.0);
}

TEST(ForwardCheckTest, ACutThatBreaksTheForwardIsUndoneAndItsGroupNamed) {
  ProbedNet setup(/*fixed_width=*/true);
  const auto weight = setup.model.conv->weight.clone();
  const auto cut = demon::detail::checked_cut(*setup.graph, setup.units, setup.model, nullptr,
                                              demon::PruneOptions(), setup.probe(),
                                              demon::ForwardCheck::kPin, 7);
  EXPECT_TRUE(cut.result.removed.empty());
  ASSERT_EQ(cut.broken.size(), 1u);
  EXPECT_EQ(setup.graph->groups()[cut.broken[0].first].name, "conv");
  EXPECT_NE(cut.broken[0].second.find("conv (4 -> 2 units)"), std::string::npos)
      << cut.broken[0].second;
  EXPECT_NE(cut.warning.find("prune event at step 7: cutting conv broke the model's forward"),
            std::string::npos)
      << cut.warning;
  EXPECT_NE(cut.warning.find("x.flatten(1)"), std::string::npos) << cut.warning;
  EXPECT_TRUE(torch::equal(setup.model.conv->weight, weight));
  EXPECT_EQ(setup.model.fc->weight.size(1), 4 * 6 * 6);
  EXPECT_EQ(conv_width(*setup.graph), 4);
  EXPECT_EQ(setup.probe()(nullptr), "");
}

TEST(ForwardCheckTest, InErrorModeABrokenForwardThrowsAndChangesNothing) {
  ProbedNet setup(/*fixed_width=*/true);
  const auto weight = setup.model.conv->weight.clone();
  try {
    demon::detail::checked_cut(*setup.graph, setup.units, setup.model, nullptr,
                               demon::PruneOptions(), setup.probe(), demon::ForwardCheck::kError,
                               7);
    FAIL() << "a cut that breaks the forward did not throw";
  } catch (const demon::RuntimeError& error) {
    const std::string text = error.what();
    EXPECT_NE(text.find("prune event at step 7: the cut model no longer runs its forward"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("Model, optimizer and pruner are as before the event"), std::string::npos);
  }
  EXPECT_TRUE(torch::equal(setup.model.conv->weight, weight));
  EXPECT_EQ(conv_width(*setup.graph), 4);
  EXPECT_EQ(setup.probe()(nullptr), "");
}

}  // namespace
