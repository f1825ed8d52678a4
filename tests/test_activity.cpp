#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

#include "demon/activity.h"
#include "demon/graph.h"
#include "graph_support.h"
#include "models.h"
#include "support.h"

namespace {

using demon::ActivityTracker;
using demon::DependencyGraph;
using namespace demon::testing;

// A chain with three kinds of activation that keeps each activation's output ("taps").
struct TapNet : TestModel {
  TapNet() {
    c1 = register_module("c1", conv(3, 6));
    b1 = register_module("b1", torch::nn::BatchNorm2d(6));
    c2 = register_module("c2", conv(6, 5));
    b2 = register_module("b2", torch::nn::BatchNorm2d(5));
    fc = register_module("fc", torch::nn::Linear(5 * 16, 7));
    head = register_module("head", torch::nn::Linear(7, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    taps.clear();
    auto h = torch::relu(b1(c1(x)));
    taps.push_back(h);
    h = torch::leaky_relu(b2(c2(h)), 0.1);
    taps.push_back(h);
    h = torch::gelu(fc(torch::max_pool2d(h, 2).flatten(1)));
    taps.push_back(h);
    return head(h);
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 8, 8}); }
  std::vector<torch::Tensor> taps;
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::BatchNorm2d b1{nullptr}, b2{nullptr};
  torch::nn::Linear fc{nullptr}, head{nullptr};
};

// Per channel (dim 1): the largest |value|, computed directly.
torch::Tensor brute_force_peak(const torch::Tensor& activation) {
  auto moved = activation.detach().transpose(0, 1).reshape({activation.size(1), -1});
  return moved.abs().amax(1).to(torch::kFloat);
}

// Per channel (dim 1): any |value| > epsilon.
torch::Tensor brute_force_active(const torch::Tensor& activation, double epsilon) {
  return brute_force_peak(activation).gt(epsilon);
}

// Channel 2 of b1 is dead (ReLU of a constant -5), channel 0 of b2 gives LeakyReLU(-5) = -0.5
// (small, not zero), fc's unit 4 gives GELU(-3) = -0.004 (small, not zero).
void make_some_channels_quiet(TapNet& net) {
  torch::NoGradGuard no_grad;
  net.b1->weight[2] = 0.0;
  net.b1->bias[2] = -5.0;
  net.b2->weight[0] = 0.0;
  net.b2->bias[0] = -5.0;
  net.fc->weight[4].zero_();
  net.fc->bias[4] = -3.0;
}

TEST(ActivityTest, PeaksMatchBruteForceOverPasses) {
  torch::manual_seed(0);
  auto net = std::make_shared<TapNet>();
  make_some_channels_quiet(*net);
  ActivityTracker tracker;
  std::vector<torch::Tensor> expected(3);
  for (int pass = 0; pass < 3; ++pass) {
    const auto x = net->example_input(8) * (pass + 1);
    auto loss = net->forward(x).pow(2).mean();
    const auto graph = DependencyGraph::discover(*net, loss);
    ASSERT_EQ(graph.sites().size(), 3u);
    ASSERT_TRUE(tracker.observe(graph, loss));
    for (size_t s = 0; s < 3; ++s) {
      const auto peak = brute_force_peak(net->taps[s]);
      expected[s] = pass == 0 ? peak : torch::maximum(expected[s], peak);
      // Exact: a maximum involves no rounding.
      EXPECT_TRUE(torch::equal(tracker.peaks()[s].cpu(), expected[s]))
          << "site " << s << " pass " << pass << "\n"
          << tracker.peaks()[s] << expected[s];
    }
    // Per unit: the largest peak over its read sites and positions.
    const auto unit_peaks = tracker.unit_peaks(graph);
    for (size_t s = 0; s < 3; ++s) {
      const auto& owner = graph.sites()[s].owner;
      for (size_t p = 0; p < owner.size(); ++p) {
        if (owner[p] >= 0 && graph.units()[owner[p]].read_sites.size() == 1) {
          EXPECT_EQ(unit_peaks[owner[p]], expected[s][static_cast<int64_t>(p)].item<double>());
        }
      }
    }
  }
  EXPECT_EQ(tracker.observations(), 3);
}

// Channels-last activations (the layout a channels-last model computes in) with odd channel
// counts take the activity read's other reduction order (wide rows first): the same peaks,
// exactly, for the largest (ReLU) and the smallest (LeakyReLU) values.
TEST(ActivityTest, ChannelsLastPeaksMatchBruteForce) {
  torch::manual_seed(0);
  auto net = std::make_shared<TapNet>();
  make_some_channels_quiet(*net);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : net->parameters()) {
      if (p.dim() == 4)
        p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
    }
  }
  const auto x = net->example_input(8).contiguous(torch::MemoryFormat::ChannelsLast);
  auto loss = net->forward(x).pow(2).mean();
  for (size_t s = 0; s < 2; ++s) {
    ASSERT_TRUE(net->taps[s].is_contiguous(torch::MemoryFormat::ChannelsLast)) << s;
    ASSERT_FALSE(net->taps[s].is_contiguous()) << s;
  }
  const auto graph = DependencyGraph::discover(*net, loss);
  ActivityTracker tracker;
  ASSERT_TRUE(tracker.observe(graph, loss));
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_TRUE(torch::equal(tracker.peaks()[s].cpu(), brute_force_peak(net->taps[s])))
        << "site " << s << "\n"
        << tracker.peaks()[s] << brute_force_peak(net->taps[s]);
  }
  EXPECT_EQ(tracker.peaks()[0][2].item<float>(), 0.0f);  // b1's channel 2 is dead
}

TEST(ActivityTest, DeadUnitsFollowEpsilon) {
  torch::manual_seed(0);
  auto net = std::make_shared<TapNet>();
  make_some_channels_quiet(*net);
  const auto x = net->example_input(8);
  auto loss = net->forward(x).pow(2).mean();
  const auto graph = DependencyGraph::discover(*net, loss);
  auto dead_names = [&](double epsilon) {
    ActivityTracker tracker(epsilon);
    EXPECT_TRUE(tracker.observe(graph, loss));
    std::vector<std::pair<std::string, size_t>> names;
    for (int64_t u : tracker.dead_units(graph)) {
      const auto& group = graph.groups()[graph.units()[u].group];
      names.emplace_back(
          group.name, std::find(group.units.begin(), group.units.end(), u) - group.units.begin());
    }
    std::sort(names.begin(), names.end());
    return names;
  };
  // Exactly zero: only the ReLU channel.
  EXPECT_EQ(dead_names(0.0), (std::vector<std::pair<std::string, size_t>>{{"c1", 2}}));
  // |GELU(-3)| = 0.004 counts as dead once epsilon covers it.
  EXPECT_EQ(dead_names(0.01), (std::vector<std::pair<std::string, size_t>>{{"c1", 2}, {"fc", 4}}));
  // At 0.6, |LeakyReLU| = 0.5 is dead too, and so is every unit whose outputs all stay within
  // 0.6 on this batch (at initialization some GELU units do): compare with brute force.
  std::vector<std::pair<std::string, size_t>> expected;
  for (size_t s = 0; s < 3; ++s) {
    const auto active = brute_force_active(net->taps[s], 0.6);
    const auto& owner = graph.sites()[s].owner;
    for (size_t p = 0; p < owner.size(); ++p) {
      if (active[static_cast<int64_t>(p)].item<bool>())
        continue;
      const auto& group = graph.groups()[graph.units()[owner[p]].group];
      expected.emplace_back(
          group.name,
          std::find(group.units.begin(), group.units.end(), owner[p]) - group.units.begin());
    }
  }
  std::sort(expected.begin(), expected.end());
  const auto at_06 = dead_names(0.6);
  EXPECT_EQ(at_06, expected);
  for (const auto& known :
       std::vector<std::pair<std::string, size_t>>{{"c1", 2}, {"c2", 0}, {"fc", 4}}) {
    EXPECT_NE(std::find(at_06.begin(), at_06.end(), known), at_06.end()) << known.first;
  }
  EXPECT_THROW(ActivityTracker(-1.0), std::invalid_argument);
}

TEST(ActivityTest, ActivityIsOredAcrossPassesAndReset) {
  torch::manual_seed(0);
  auto net = std::make_shared<TapNet>();
  make_some_channels_quiet(*net);
  const auto x = net->example_input(8);
  auto first = net->forward(x).pow(2).mean();
  const auto graph = DependencyGraph::discover(*net, first);
  ActivityTracker tracker;
  EXPECT_TRUE(tracker.dead_units(graph).empty());  // no evidence yet
  ASSERT_TRUE(tracker.observe(graph, first));
  EXPECT_EQ(tracker.dead_units(graph).size(), 1u);
  // The dead channel wakes up in a second pass: it is no longer dead.
  {
    torch::NoGradGuard no_grad;
    net->b1->bias[2] = 5.0;
  }
  ASSERT_TRUE(tracker.observe(graph, net->forward(x).pow(2).mean()));
  EXPECT_EQ(tracker.observations(), 2);
  EXPECT_TRUE(tracker.dead_units(graph).empty());
  tracker.reset();
  EXPECT_EQ(tracker.observations(), 0);
  EXPECT_TRUE(tracker.peaks().empty());
}

TEST(ActivityTest, AnotherStructureIsRefused) {
  torch::manual_seed(0);
  auto net = std::make_shared<TapNet>();
  const auto graph = DependencyGraph::discover(*net, net->forward(net->example_input(4)));
  auto other = std::make_shared<VggNet>();
  ActivityTracker tracker;
  EXPECT_FALSE(tracker.observe(graph, other->forward(other->example_input(4))));
  EXPECT_EQ(tracker.observations(), 0);
}

// An activation modified in place after the fact cannot be read: counted as active, never dead.
struct InPlaceNet : TestModel {
  InPlaceNet() {
    c1 = register_module("c1", conv(3, 4));
    b1 = register_module("b1", torch::nn::BatchNorm2d(4));
    c2 = register_module("c2", conv(4, 2));
    head = register_module("head", torch::nn::Linear(2, 2));
  }
  torch::Tensor forward(torch::Tensor x) override {
    auto h = torch::relu(b1(c1(x)));
    h.mul_(2.0);  // bumps the version of ReLU's saved result
    return head(torch::relu(c2(h)).mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 5, 5}); }
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::BatchNorm2d b1{nullptr};
  torch::nn::Linear head{nullptr};
};

TEST(ActivityTest, UnreadableActivationCountsAsActive) {
  torch::manual_seed(0);
  auto net = std::make_shared<InPlaceNet>();
  {
    torch::NoGradGuard no_grad;
    net->b1->weight.zero_();
    net->b1->bias.fill_(-1.0);  // every c1 channel dead
  }
  const auto x = net->example_input(4);
  auto graph = DependencyGraph::discover(*net, net->forward(x));
  ActivityTracker tracker;
  ASSERT_TRUE(tracker.observe(graph, net->forward(x)));
  EXPECT_TRUE(tracker.peaks()[0].isinf().all().item<bool>());
  // c1's units cannot be proven dead. (c2's really are: their input is all zero.)
  for (int64_t u : tracker.dead_units(graph)) {
    EXPECT_NE(graph.groups()[graph.units()[u].group].name, "c1");
  }
}

TEST(ActivityTest, PeaksStayOnCuda) {
  DEMON_REQUIRE_CUDA();
  torch::manual_seed(0);
  auto net = std::make_shared<TapNet>();
  make_some_channels_quiet(*net);
  net->to(torch::kCUDA);
  const auto x = net->example_input(8).to(torch::kCUDA);
  auto loss = net->forward(x).pow(2).mean();
  const auto graph = DependencyGraph::discover(*net, loss);
  ActivityTracker tracker;
  ASSERT_TRUE(tracker.observe(graph, loss));
  for (size_t s = 0; s < 3; ++s) {
    EXPECT_TRUE(tracker.peaks()[s].is_cuda());
    EXPECT_TRUE(torch::equal(tracker.peaks()[s].cpu(), brute_force_peak(net->taps[s].cpu())));
  }
  EXPECT_EQ(tracker.dead_units(graph).size(), 1u);
}

}  // namespace
