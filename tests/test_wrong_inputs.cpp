// Wrong inputs a user will give: each gets a clear answer that names the problem, and nothing
// of the model or optimizer changes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "demon/demon.h"
#include "graph_support.h"
#include "support.h"
#include "training_support.h"

namespace {

using demon::DemonOptions;
using demon::DemonPruner;
using namespace demon::testing;

bool any_warning_has(const DemonPruner& pruner, const std::string& text) {
  const auto& warnings = pruner.warnings();
  return std::any_of(warnings.begin(), warnings.end(),
                     [&](const std::string& w) { return w.find(text) != std::string::npos; });
}

std::string validation_error(const DemonOptions& options) {
  try {
    options.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no error";
}

TEST(WrongInputsTest, ABudgetWithoutPressureOrCutsIsRefused) {
  const auto budget = DemonOptions(100).target(0.5);
  EXPECT_NE(validation_error(DemonOptions(budget).regularizer(demon::Regularizer::kNone))
                .find("target needs a regularizer"),
            std::string::npos);
  EXPECT_NE(validation_error(DemonOptions(budget).prune(false)).find("target needs prune(true)"),
            std::string::npos);
  EXPECT_EQ(validation_error(budget), "no error");
}

TEST(WrongInputsTest, ACustomCostBudgetNeedsTheCostBeforeTheFirstBackward) {
  torch::manual_seed(0);
  SmallCnn model;
  auto optimizer =
      std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.1));
  DemonPruner pruner(
      model, optimizer,
      DemonOptions(20).target(0.5).target_metric(demon::BudgetMetric::kCustom).lambda_peak(0.1));
  const auto batch = small_batch();
  auto loss = torch::cross_entropy_loss(model->forward(batch.data), batch.target);
  try {
    pruner.backward(loss);
    ADD_FAILURE() << "no error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("set_cost()"), std::string::npos) << e.what();
  }
  for (const auto& p : model->parameters())
    EXPECT_FALSE(p.grad().defined());  // refused before backward ran
  pruner.set_cost(
      [](const demon::DependencyGraph& graph) { return static_cast<double>(graph.flops()); });
  pruner.backward(loss);
  pruner.step();
  EXPECT_EQ(pruner.current_step(), 1);
}

TEST(WrongInputsTest, ParametersTheOptimizerDoesNotStepAreNamed) {
  torch::manual_seed(0);
  SmallCnn model;
  // bn2 left out of the optimizer by mistake; conv1 frozen on purpose (not reported).
  model->conv1->weight.set_requires_grad(false);
  std::vector<torch::Tensor> params;
  for (const auto& item : model->named_parameters()) {
    if (item.key().rfind("bn2.", 0) != 0 && item.key() != "conv1.weight")
      params.push_back(item.value());
  }
  auto foreign = torch::zeros({3}, torch::requires_grad());
  params.push_back(foreign);
  auto optimizer = std::make_shared<torch::optim::SGD>(params, torch::optim::SGDOptions(0.1));
  DemonPruner pruner(model, optimizer, DemonOptions(20));
  EXPECT_TRUE(any_warning_has(pruner,
                              "2 trainable parameters of the model are in no parameter "
                              "group of the optimizer (bn2.weight and bn2.bias)"));
  EXPECT_FALSE(any_warning_has(pruner, "conv1.weight"));
  EXPECT_TRUE(any_warning_has(pruner, "1 parameters of the optimizer are not the model's"));
}

TEST(WrongInputsTest, AFloorForAGroupTheModelLacksIsNamed) {
  torch::manual_seed(0);
  SmallCnn model;
  auto optimizer =
      std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.1));
  DemonPruner pruner(model, optimizer,
                     DemonOptions(20).group_min_width({{"conv2", 2}, {"layer9.conv1", 4}}));
  const auto batch = small_batch();
  pruner.backward(torch::cross_entropy_loss(model->forward(batch.data), batch.target));
  EXPECT_TRUE(any_warning_has(pruner,
                              "group_min_width names groups the model does not have "
                              "(layer9.conv1)"));
}

// Data-dependent control flow: the structure is discovered anew at each change and the evidence
// since the last event dropped; the user is told once, and not for a graph that stays the same.
TEST(WrongInputsTest, AGraphThatChangesBetweenStepsIsNamedOnce) {
  torch::manual_seed(0);
  SmallCnn model;
  auto optimizer =
      std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.1));
  DemonPruner pruner(model, optimizer, DemonOptions(20));
  const auto batch = small_batch();
  const std::string text = "the model's autograd graph changed between steps";
  for (int step = 0; step < 6; ++step) {
    auto out = model->forward(batch.data);
    if (step >= 2 && step % 2 == 0)
      out = out + model->forward(batch.data.flip(3));  // a second pass on some steps only
    pruner.zero_grad();
    pruner.backward(torch::cross_entropy_loss(out, batch.target));
    pruner.step();
    EXPECT_EQ(any_warning_has(pruner, text), step >= 2) << "step " << step;
  }
  EXPECT_EQ(std::count_if(pruner.warnings().begin(), pruner.warnings().end(),
                          [&](const std::string& w) { return w.find(text) != std::string::npos; }),
            1);
}

// A cut can change the forward itself: once the stem loses a channel that layer1_0's output
// keeps, the block's ChannelSelection scatters into zeros (index_copy) instead of a plain
// index_select. The next backward discovers the structure anew without blaming control flow
// (such a warning also made a resumed run's summary differ from the uninterrupted one).
TEST(WrongInputsTest, AForwardChangedByACutIsNoControlFlow) {
  auto model = small_resnet();
  auto optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), 0.01);
  DemonPruner pruner(model, optimizer, DemonOptions(100).lambda_peak(0.0).noise(false));
  train(pruner, model, 0, 1);
  const auto nodes = pruner.graph()->node_count();
  plant_dead(*pruner.graph(), unit_of(*pruner.graph(), "stem", 0));
  pruner.prune_now();  // the evidence so far saw the unit alive
  train(pruner, model, 1, 2);
  pruner.prune_now();
  ASSERT_EQ(model->stem->weight.size(0), 7);
  train(pruner, model, 2, 4);
  EXPECT_GT(pruner.graph()->node_count(), nodes);  // discovered anew: the selection scatters
  EXPECT_FALSE(any_warning_has(pruner, "autograd graph changed")) << pruner.warnings().front();
}

// A model moved after the pruner was built (here to float64; a device works the same way): the
// activity record and the forward check's probe input follow it, so prune events still check
// the cut model instead of giving up on an input of the old dtype.
TEST(WrongInputsTest, AModelMovedToAnotherDtypeIsFollowed) {
  torch::manual_seed(0);
  SmallCnn model;
  auto optimizer =
      std::make_shared<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.05));
  DemonPruner pruner(model, optimizer, DemonOptions(30).lambda_peak(0.3).prune_every(10));
  auto train = [&](int from, int to, torch::ScalarType dtype) {
    for (int step = from; step < to; ++step) {
      const auto batch = small_batch(16, static_cast<uint64_t>(step));
      pruner.zero_grad();
      pruner.backward(
          torch::cross_entropy_loss(model->forward(batch.data.to(dtype)), batch.target));
      pruner.step();
    }
  };
  train(0, 5, torch::kFloat);
  model->to(torch::kDouble);
  train(5, 30, torch::kDouble);
  EXPECT_GE(pruner.prune_events(), 2);
  EXPECT_FALSE(any_warning_has(pruner, "cannot check that the cut model still runs"));
  for (const auto& p : model->parameters())
    EXPECT_EQ(p.scalar_type(), torch::kDouble);
}

}  // namespace
