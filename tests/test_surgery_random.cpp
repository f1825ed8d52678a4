// Random architectures from the same parts as the surgery tests' models, random dead sets: the
// cut model computes what the uncut one did.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "demon/channel_selection.h"
#include "demon/errors.h"
#include "demon/graph.h"
#include "demon/surgery.h"
#include "detail/torch_compat.h"
#include "graph_support.h"
#include "models.h"
#include "support.h"
#include "surgery_support.h"

namespace {

using demon::DependencyGraph;
using namespace demon::testing;

struct RandomNet : TestModel {
  explicit RandomNet(uint64_t seed) {
    std::mt19937_64 rng(seed);
    auto pick = [&](int64_t lo, int64_t hi) {
      return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    int64_t channels = pick(4, 8);
    int64_t spatial = 8;
    layers.push_back(add(conv(3, channels), torch::nn::BatchNorm2d(channels)));
    const int64_t depth = pick(3, 6);
    for (int64_t i = 0; i < depth; ++i) {
      const int64_t kind = pick(0, 5);
      const std::string name = "p" + std::to_string(i);
      if (kind == 0) {  // conv-bn-relu to a new width
        const int64_t out = pick(3, 9);
        layers.push_back(add(conv(channels, out), torch::nn::BatchNorm2d(out)));
        channels = out;
      } else if (kind == 1) {  // depthwise
        layers.push_back(
            add(conv(channels, channels, 3, channels), torch::nn::BatchNorm2d(channels)));
      } else if (kind == 2 || kind == 3) {  // residual block, bare or with selection
        auto block = std::make_shared<Block>(
            channels, channels, kind == 2 ? Block::Shortcut::kBare : Block::Shortcut::kSelection);
        residuals.push_back(register_module(name, block));
        layers.push_back([block](torch::Tensor x) { return block->forward(x); });
      } else if (kind == 4) {  // two branches, concatenated
        const int64_t a = pick(2, 5), b = pick(2, 5);
        auto left = add(conv(channels, a), torch::nn::BatchNorm2d(a));
        auto right = add(conv(channels, b, 1), torch::nn::BatchNorm2d(b));
        layers.push_back([left, right](torch::Tensor x) mutable {
          return torch::cat({left(x), right(x)}, 1);
        });
        channels = a + b;
      } else if (spatial >= 4) {  // max pool
        layers.push_back([](torch::Tensor x) { return torch::max_pool2d(x, 2); });
        spatial /= 2;
      }
    }
    flatten_head = pick(0, 1) == 1;
    const int64_t features = flatten_head ? channels * spatial * spatial : channels;
    hidden = register_module("hidden", torch::nn::Linear(features, pick(4, 10)));
    head = register_module("head", torch::nn::Linear(hidden->weight.size(0), 3));
  }
  // conv → norm → relu, registering both modules.
  std::function<torch::Tensor(torch::Tensor)> add(torch::nn::Conv2d c, torch::nn::BatchNorm2d b) {
    const std::string n = std::to_string(count++);
    register_module("conv" + n, c);
    register_module("bn" + n, b);
    return [c, b](torch::Tensor x) mutable { return torch::relu(b(c(x))); };
  }
  torch::Tensor forward(torch::Tensor x) override {
    for (auto& layer : layers)
      x = layer(x);
    x = flatten_head ? x.flatten(1) : torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1);
    return head(torch::relu(hidden(x)));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 8, 8}); }

  std::vector<std::function<torch::Tensor(torch::Tensor)>> layers;
  std::vector<std::shared_ptr<Block>> residuals;
  torch::nn::Linear hidden{nullptr}, head{nullptr};
  bool flatten_head = false;
  int count = 0;
};

class RandomSurgeryTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(RandomSurgeryTest, RandomDeadSetsPreserveTheFunction) {
  const uint64_t seed = GetParam();
  DoublePrecision double_precision;
  torch::manual_seed(seed);
  auto model = std::make_shared<RandomNet>(seed);
  const auto x = model->example_input(5);
  auto graph = DependencyGraph::discover(*model, model->forward(x));
  std::mt19937_64 rng(seed * 7 + 1);
  std::vector<int64_t> units;
  for (size_t u = 0; u < graph.units().size(); ++u) {
    if (graph.prunable(u) && std::bernoulli_distribution(0.35)(rng)) {
      units.push_back(static_cast<int64_t>(u));
    }
  }
  ASSERT_FALSE(units.empty()) << graph;
  for (int64_t u : units)
    plant_dead(graph, u);
  const auto [train_before, eval_before] = outputs(model, x);

  // Shapes and axes before the cut, to predict the parameter count independently.
  const auto axes_before = graph.axes();
  std::vector<std::vector<int64_t>> shapes_before;
  for (const auto& tensor : graph.tensors())
    shapes_before.push_back(tensor.tensor.sizes().vec());

  auto optimizer = std::make_shared<torch::optim::SGD>(
      model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const auto result = demon::prune_units(graph, units, optimizer.get());
  EXPECT_EQ(result.removed.size() + result.kept_by_floor.size(), units.size());
  // Every parameter keeps, along each channel axis, the indices whose unit was not removed.
  std::vector<bool> removed(graph.units().size(), false);
  for (int64_t u : result.removed)
    removed[u] = true;
  auto shapes = shapes_before;
  for (const auto& axis : axes_before) {
    if (axis.tensor < 0)
      continue;
    int64_t n = 0;
    for (int64_t owner : axis.owner)
      n += !removed[owner];
    shapes[axis.tensor][axis.dim] = n;
  }
  int64_t expected = 0;
  for (size_t t = 0; t < shapes.size(); ++t) {
    if (!graph.tensors()[t].is_parameter)
      continue;
    int64_t numel = 1;
    for (int64_t size : shapes[t])
      numel *= size;
    expected += numel;
    EXPECT_EQ(graph.tensors()[t].tensor.sizes().vec(), shapes[t]) << graph.tensors()[t].name;
  }
  EXPECT_EQ(parameter_count(*model), expected);

  const auto [train_after, eval_after] = outputs(model, x);
  expect_close(train_before, train_after, "train mode, seed " + std::to_string(seed));
  expect_close(eval_before, eval_after, "eval mode, seed " + std::to_string(seed));
  expect_options_match_shapes(*model);
  auto fresh = DependencyGraph::discover(*model, model->forward(x));
  EXPECT_EQ(fresh.live_units(), graph.live_units());
  optimizer->zero_grad();
  model->forward(x).pow(2).mean().backward();
  EXPECT_NO_THROW(optimizer->step());
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomSurgeryTest, ::testing::Range<uint64_t>(1, 13));

}  // namespace
