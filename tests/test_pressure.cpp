// Where λ pushes (src/pruner/pressure.h): protected floors get none, and the weighed pressures
// push in proportion to what a cut saves.
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

}  // namespace
