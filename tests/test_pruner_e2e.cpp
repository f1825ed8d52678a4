#include <gtest/gtest.h>
#include <torch/torch.h>

#include <numeric>
#include <vector>

#include "demon/pruner.h"
#include "graph_support.h"
#include "support.h"
#include "training_support.h"

namespace {

using demon::DemonOptions;
using demon::DemonPruner;
using namespace demon::testing;

double mean(const std::vector<double>& v, size_t from, size_t to) {
  return std::accumulate(v.begin() + from, v.begin() + to, 0.0) / static_cast<double>(to - from);
}

// Strong pressure: units die and are cut during training, the loss keeps going down, sparsity
// rises, and each cut leaves the outputs unchanged: in training mode on the last training batch,
// in eval mode on the death-check batches (criterion "both").
TEST(PrunerEndToEndTest, StrongLassoPrunesDuringTrainingWithoutChangingOutputs) {
  auto model = small_resnet();
  auto optimizer = std::make_shared<torch::optim::AdamW>(
      model->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(5e-4));
  const int64_t steps = 150;
  DemonPruner pruner(
      model.ptr(), optimizer,
      DemonOptions(steps).lambda_peak(0.1).sigma_peak(1e-4).prune_every(25).death_check(
          demon::DeathCheck::kBoth));
  const std::vector<torch::Tensor> check = {synthetic_batch(-1, 64).first,
                                            synthetic_batch(-2, 64).first};
  pruner.set_death_check(check, [&](const torch::Tensor& x) { return model->forward(x); });

  int64_t last_step = 0;
  std::pair<torch::Tensor, std::vector<torch::Tensor>> before;
  auto outputs_now = [&] {
    // Training mode on the batch of the step just taken; eval mode on the check batches. In
    // double precision, so that only the cut can make a difference.
    auto [train_out, ignored] =
        outputs_train_eval_in_double(model, synthetic_batch(last_step - 1).first);
    std::vector<torch::Tensor> eval_out;
    for (const auto& batch : check)
      eval_out.push_back(outputs_train_eval_in_double(model, batch).second);
    return std::make_pair(train_out, eval_out);
  };
  std::vector<demon::PruneReport> reports;
  pruner.on_before_prune([&](int64_t step) {
    last_step = step;
    before = outputs_now();
  });
  // Computed in double, the outputs of the two models differ by double rounding, plus what units
  // that were dead within float rounding (a pre-activation of -1e-9 in float, +1e-9 in double)
  // contribute: at most float rounding of the activations, so 1e-6 relative is a safe bound.
  constexpr double kRtol = 1e-6, kAtol = 1e-7;
  pruner.on_prune([&](const demon::PruneReport& report) {
    reports.push_back(report);
    const auto after = outputs_now();
    EXPECT_TRUE(torch::allclose(before.first, after.first, kRtol, kAtol))
        << "train mode, step " << report.step << ": "
        << (before.first - after.first).abs().max().item<double>();
    for (size_t b = 0; b < check.size(); ++b) {
      EXPECT_TRUE(torch::allclose(before.second[b], after.second[b], kRtol, kAtol))
          << "eval mode, step " << report.step << ": "
          << (before.second[b] - after.second[b]).abs().max().item<double>();
    }
  });

  const auto losses = train(pruner, model, 0, steps);
  ASSERT_EQ(reports.size(), 6u);  // steps 25, 50, ..., 150 (the last is also the final one)
  int64_t removed = 0;
  for (const auto& report : reports)
    removed += report.units_removed;
  EXPECT_GT(removed, 20) << reports.back().table();
  const auto summary = pruner.summary();
  EXPECT_GT(summary.neural_sparsity(), 0.1) << summary.table();
  EXPECT_GT(summary.parameter_sparsity(), 0.1) << summary.table();
  EXPECT_LT(summary.flops_ratio(), 0.95);
  EXPECT_LT(mean(losses, steps - 20, steps), mean(losses, 0, 20));
  EXPECT_LT(mean(losses, steps - 20, steps), 0.2);  // it does learn the 4 classes
  // Sparsity only goes up, event after event.
  for (size_t i = 1; i < reports.size(); ++i) {
    EXPECT_GE(reports[i].after.neural_sparsity(), reports[i - 1].after.neural_sparsity());
    EXPECT_EQ(reports[i].before.live_units, reports[i - 1].after.live_units);
  }
}

// λ = 0 and no noise: with pruning and activity tracking on, the pruner is still bit-identical
// to the bare optimizer (and nothing dies).
TEST(PrunerEndToEndTest, NoPressureIsBitIdenticalToTheBareOptimizer) {
  auto model = small_resnet();
  auto reference = small_resnet();
  auto optimizer = std::make_shared<torch::optim::SGD>(
      model->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  auto bare = std::make_shared<torch::optim::SGD>(
      reference->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  DemonPruner pruner(model.ptr(), optimizer,
                     DemonOptions(30).lambda_peak(0.0).noise(false).prune_every(10));
  int64_t removed = 0;
  pruner.on_prune([&](const demon::PruneReport& r) { removed += r.units_removed; });
  train(pruner, model, 0, 30);
  for (int64_t step = 0; step < 30; ++step) {
    auto [images, labels] = synthetic_batch(step);
    bare->zero_grad();
    torch::cross_entropy_loss(reference->forward(images), labels).backward();
    bare->step();
  }
  EXPECT_EQ(pruner.prune_events(), 3);
  EXPECT_EQ(removed, 0);
  expect_bitwise_equal(snapshot(*model), snapshot(*reference), "no pressure");
}

TEST(PrunerEndToEndTest, PruneNowCheckDeathAndTheReport) {
  auto model = small_resnet();
  auto optimizer = std::make_shared<torch::optim::Adam>(model->parameters());
  DemonPruner pruner(model.ptr(), optimizer, DemonOptions(100).prune_every(1000));
  EXPECT_EQ(pruner.prune_now().units_removed, 0);  // nothing known yet
  EXPECT_THROW(pruner.check_death({synthetic_batch(0).first},
                                  [&](const torch::Tensor& x) { return model->forward(x); }),
               std::logic_error);
  train(pruner, model, 0, 1);
  // Plant two dead units in layer1_0's first convolution.
  const auto* graph = pruner.graph();
  ASSERT_NE(graph, nullptr);
  const int64_t a = unit_of(*graph, "layer1_0.conv1", 1);
  const int64_t b = unit_of(*graph, "layer1_0.conv1", 5);
  plant_dead(*graph, a);
  plant_dead(*graph, b);
  auto forward = [&](const torch::Tensor& x) { return model->forward(x); };
  const auto dead =
      pruner.check_death({synthetic_batch(50).first, synthetic_batch(51).first}, forward);
  // The planted units, and maybe units that die under the (one step old) running statistics.
  EXPECT_NE(std::find(dead.begin(), dead.end(), a), dead.end());
  EXPECT_NE(std::find(dead.begin(), dead.end(), b), dead.end());
  EXPECT_TRUE(model->is_training());  // restored after the eval-mode check
  // Train-mode activity covers every step since the last prune event, and step 0 saw the units
  // alive: an (empty) event starts a fresh interval, then one step with the units dead.
  EXPECT_EQ(pruner.prune_now().units_removed, 0);
  train(pruner, model, 1, 2);
  const auto report = pruner.prune_now();
  EXPECT_EQ(report.units_removed, 2);
  EXPECT_EQ(report.death_check, "train");
  ASSERT_EQ(report.groups.size(), 1u);
  EXPECT_EQ(report.groups[0].name, "layer1_0.conv1");
  EXPECT_EQ(report.groups[0].before, 8);
  EXPECT_EQ(report.groups[0].after, 6);
  EXPECT_EQ(report.after.live_units, report.before.live_units - 2);
  EXPECT_EQ(model->blocks[0]->conv1->weight.size(0), 6);
  EXPECT_EQ(report.after.parameters, report.before.parameters - 2 * (8 * 9 + 2 + 8 * 9));
  const std::string table = report.table();
  EXPECT_NE(table.find("layer1_0.conv1: 8 -> 6"), std::string::npos) << table;
  EXPECT_NE(table.find("neural sparsity"), std::string::npos);
  const auto json = report.to_json();
  EXPECT_EQ(json.at("units_removed"), 2);
  EXPECT_EQ(json.at("after").at("live_units"), report.after.live_units);
  EXPECT_DOUBLE_EQ(json.at("after").at("neural_sparsity").get<double>(),
                   report.after.neural_sparsity());
  EXPECT_EQ(demon::ModelSummary::from_json(json.at("after")).to_json(), json.at("after"));
  // Training goes on.
  const auto losses = train(pruner, model, 2, 5);
  for (double loss : losses)
    EXPECT_TRUE(std::isfinite(loss));
}

TEST(PrunerEndToEndTest, EvalDeathCheckNeedsData) {
  auto model = small_resnet();
  auto optimizer = std::make_shared<torch::optim::Adam>(model->parameters());
  DemonPruner pruner(model.ptr(), optimizer,
                     DemonOptions(10).prune_every(5).death_check(demon::DeathCheck::kEval));
  train(pruner, model, 0, 4);
  const auto before = snapshot(*model);
  try {
    train(pruner, model, 4, 5);
    ADD_FAILURE() << "no error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("step 5 is a prune event"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("set_death_check"), std::string::npos) << e.what();
  }
  // Refused before the optimizer stepped: the run can be given its batches and go on.
  EXPECT_EQ(pruner.current_step(), 4);
  expect_bitwise_equal(snapshot(*model), before, "parameters after the refused step");
  pruner.set_death_check({synthetic_batch(100, 64).first});
  train(pruner, model, 4, 10);
  EXPECT_EQ(pruner.prune_events(), 2);
}

TEST(PrunerEndToEndTest, PruningOffAppliesPressureOnly) {
  auto model = small_resnet();
  auto optimizer = std::make_shared<torch::optim::Adam>(model->parameters());
  DemonPruner pruner(model.ptr(), optimizer,
                     DemonOptions(20).prune(false).lambda_peak(1.0).prune_every(5));
  const int64_t before = parameter_count(*model);
  train(pruner, model, 0, 20);
  EXPECT_EQ(pruner.prune_events(), 0);
  EXPECT_EQ(pruner.graph(), nullptr);
  EXPECT_EQ(parameter_count(*model), before);
}

TEST(PrunerEndToEndTest, TrainsAndPrunesOnCuda) {
  DEMON_REQUIRE_CUDA();
  auto model = small_resnet();
  model->to(torch::kCUDA);
  auto optimizer =
      std::make_shared<torch::optim::AdamW>(model->parameters(), torch::optim::AdamWOptions(2e-2));
  DemonPruner pruner(model.ptr(), optimizer, DemonOptions(60).lambda_peak(0.1).prune_every(20));
  for (int64_t step = 0; step < 60; ++step) {
    auto [images, labels] = synthetic_batch(step);
    pruner.zero_grad();
    auto loss = torch::cross_entropy_loss(model->forward(images.cuda()), labels.cuda());
    pruner.backward(loss);
    pruner.step();
  }
  EXPECT_EQ(pruner.prune_events(), 3);
  EXPECT_GT(pruner.summary().neural_sparsity(), 0.0);
  for (const auto& p : model->parameters())
    EXPECT_TRUE(p.is_cuda());
  for (const auto& record : pruner.activity().peaks()) {
    if (record.defined()) {
      EXPECT_TRUE(record.is_cuda());
    }
  }
}

}  // namespace
