// The optimizer state a cut slices: every built-in optimizer's moments match a dense twin that
// trains with the removed units left in place, and state no slicer knows refuses the cut.
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

template <typename Optimizer, typename Options>
void compare_with_dense_twin(const std::function<std::shared_ptr<TestModel>()>& make,
                             const std::vector<std::pair<std::string, size_t>>& kill,
                             Options options) {
  DoublePrecision double_precision;
  torch::manual_seed(0);
  auto pruned = make();
  torch::manual_seed(0);
  auto dense = make();
  torch::manual_seed(1);
  const auto x = pruned->example_input(8);
  auto graph = DependencyGraph::discover(*pruned, pruned->forward(x));
  auto dense_graph = DependencyGraph::discover(*dense, dense->forward(x));
  std::vector<int64_t> units;
  for (const auto& [name, position] : kill)
    units.push_back(unit_of(graph, name, position));
  for (int64_t u : units) {
    plant_dead(graph, u);
    plant_dead(dense_graph, u);  // same structure, same unit ids
  }
  auto opt_pruned = std::make_shared<Optimizer>(pruned->parameters(), options);
  auto opt_dense = std::make_shared<Optimizer>(dense->parameters(), options);
  auto step = [&](TestModel& model, torch::optim::Optimizer& opt, int seed) {
    torch::manual_seed(seed);
    opt.zero_grad();
    model.forward(x).pow(2).mean().backward();
    opt.step();
  };
  for (int s = 0; s < 3; ++s) {
    step(*pruned, *opt_pruned, s);
    step(*dense, *opt_dense, s);
  }
  // Which indices of each parameter survive: from the axes, before the cut.
  std::vector<bool> removing(graph.units().size(), false);
  for (int64_t u : units)
    removing[u] = true;
  std::map<std::string, std::map<int64_t, std::vector<int64_t>>> keeps;
  for (const auto& axis : graph.axes()) {
    if (axis.tensor < 0)
      continue;
    std::vector<int64_t> keep;
    for (size_t i = 0; i < axis.owner.size(); ++i) {
      if (!removing[axis.owner[i]])
        keep.push_back(static_cast<int64_t>(i));
    }
    keeps[graph.tensors()[axis.tensor].name][axis.dim] = keep;
  }
  auto restrict = [&](const std::string& name, torch::Tensor t) {
    for (const auto& [dim, keep] : keeps[name])
      t = demon::keep_along(t, dim, keep);
    return t;
  };

  const auto first = pruned->named_parameters().begin()->value();
  const auto before = first.detach().clone();
  demon::prune_units(graph, units, opt_pruned.get());
  for (int s = 3; s < 6; ++s) {
    step(*pruned, *opt_pruned, s);
    step(*dense, *opt_dense, s);
  }
  // The shrunk tensors are the ones being trained (no stale copies).
  EXPECT_NE(first.sizes(), before.sizes());

  auto dense_params = dense->named_parameters();
  for (const auto& item : pruned->named_parameters()) {
    const torch::Tensor expected = restrict(item.key(), dense_params[item.key()].detach());
    const torch::Tensor actual = item.value().detach();
    ASSERT_EQ(actual.sizes(), expected.sizes()) << item.key();
    const double max_diff = (actual - expected).abs().max().template item<double>();
    EXPECT_TRUE(torch::allclose(actual, expected, kTwinRtol, kTwinAtol))
        << item.key() << " max diff " << max_diff;
    // And the optimizer's moments.
    auto* pruned_state =
        opt_pruned->state()[demon::detail::optimizer_state_key(item.value())].get();
    auto* dense_state =
        opt_dense->state()[demon::detail::optimizer_state_key(dense_params[item.key()])].get();
    if constexpr (std::is_same_v<Optimizer, torch::optim::SGD>) {
      auto& a = static_cast<torch::optim::SGDParamState&>(*pruned_state).momentum_buffer();
      auto b = restrict(item.key(),
                        static_cast<torch::optim::SGDParamState&>(*dense_state).momentum_buffer());
      EXPECT_TRUE(torch::allclose(a, b, kTwinRtol, kTwinAtol)) << item.key() << " momentum";
    } else {
      auto& a = static_cast<torch::optim::AdamParamState&>(*pruned_state);
      auto& b = static_cast<torch::optim::AdamParamState&>(*dense_state);
      EXPECT_EQ(a.step(), b.step()) << item.key();
      EXPECT_TRUE(
          torch::allclose(a.exp_avg(), restrict(item.key(), b.exp_avg()), kTwinRtol, kTwinAtol))
          << item.key() << " exp_avg";
      // Squares of gradients: their own scale is the square of the gradients'.
      EXPECT_TRUE(torch::allclose(a.exp_avg_sq(), restrict(item.key(), b.exp_avg_sq()), kTwinRtol,
                                  kTwinAtol * kTwinAtol))
          << item.key() << " exp_avg_sq";
      EXPECT_TRUE(torch::allclose(a.max_exp_avg_sq(), restrict(item.key(), b.max_exp_avg_sq()),
                                  kTwinRtol, kTwinAtol * kTwinAtol))
          << item.key() << " max_exp_avg_sq";
    }
  }
}

// (Units in front of a dropout would change the dropout mask's shape, hence its random draws,
// so the twins below keep those.)
TEST(SurgeryOptimizerTest, SgdMomentumStateMatchesDenseTwin) {
  compare_with_dense_twin<torch::optim::SGD>(
      [] { return std::make_shared<ResNet>(Block::Shortcut::kSelection); },
      {{"stem", 2}, {"block1.conv2", 4}, {"block2.conv1", 0}, {"block3.conv2", 11}},
      torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
}

TEST(SurgeryOptimizerTest, AdamStateMatchesDenseTwin) {
  compare_with_dense_twin<torch::optim::Adam>([] { return std::make_shared<VggNet>(); },
                                              {{"c1", 0}, {"c2", 11}, {"c3", 4}},
                                              torch::optim::AdamOptions(1e-2).amsgrad(true));
}

TEST(SurgeryOptimizerTest, StateOfEveryBuiltInOptimizerIsSliced) {
  using namespace torch::optim;
  std::vector<std::function<std::shared_ptr<Optimizer>(std::vector<torch::Tensor>)>> makers = {
      [](auto p) { return std::make_shared<SGD>(p, SGDOptions(0.1).momentum(0.9)); },
      [](auto p) { return std::make_shared<Adam>(p, AdamOptions(0.01).amsgrad(true)); },
      [](auto p) { return std::make_shared<AdamW>(p, AdamWOptions(0.01).amsgrad(true)); },
      [](auto p) {
        return std::make_shared<RMSprop>(p, RMSpropOptions(0.01).momentum(0.9).centered(true));
      },
      [](auto p) { return std::make_shared<Adagrad>(p, AdagradOptions(0.01)); },
  };
  for (const auto& make : makers) {
    torch::manual_seed(0);
    auto model = std::make_shared<VggNet>();
    const auto x = model->example_input(4);
    auto graph = DependencyGraph::discover(*model, model->forward(x));
    auto optimizer = make(model->parameters());
    optimizer->zero_grad();
    model->forward(x).pow(2).mean().backward();
    optimizer->step();
    demon::prune_units(graph, {unit_of(graph, "c2", 0)}, optimizer.get());
    // A step only succeeds if every state tensor has its parameter's new shape.
    optimizer->zero_grad();
    model->forward(x).pow(2).mean().backward();
    EXPECT_NO_THROW(optimizer->step());
    EXPECT_EQ(model->named_parameters()["c2.weight"].size(0), 11);
  }
}

// A custom optimizer state that nobody can slice: the cut must refuse and change nothing.
struct OddState : torch::optim::OptimizerCloneableParamState<OddState> {
  torch::Tensor trace;
};

TEST(SurgeryTest, UnsliceableOptimizerStateLeavesEverythingUntouched) {
  torch::manual_seed(0);
  auto model = std::make_shared<VggNet>();
  const auto x = model->example_input(4);
  auto graph = DependencyGraph::discover(*model, model->forward(x));
  auto optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), 0.1);
  const auto c2 = model->named_parameters()["c2.weight"];
  optimizer->state()[demon::detail::optimizer_state_key(c2)] = std::make_unique<OddState>();
  const auto before = parameter_count(*model);
  const auto unit = unit_of(graph, "c2", 0);
  try {
    demon::prune_units(graph, {unit}, optimizer.get());
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("c2.weight"), std::string::npos) << e.what();
  }
  EXPECT_EQ(parameter_count(*model), before);
  EXPECT_FALSE(graph.units()[unit].removed);
  EXPECT_EQ(model->c2->options.out_channels(), 12);

  // Once a slicer is registered, the same cut works.
  demon::register_state_slicer([](torch::optim::OptimizerParamState& state, const auto& slice) {
    auto* odd = dynamic_cast<OddState*>(&state);
    if (odd == nullptr)
      return false;
    if (odd->trace.defined())
      odd->trace = slice(odd->trace);
    return true;
  });
  demon::prune_units(graph, {unit}, optimizer.get());
  EXPECT_EQ(model->c2->options.out_channels(), 11);
}

}  // namespace
