// Bad numbers: NaN or Inf gradients and losses never poison the optimizer state or read as
// evidence of death, and skipped steps keep the pruner in step with the loop.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "demon/demon.h"
#include "detail/torch_compat.h"
#include "support.h"

namespace {

using demon::DemonOptions;
using demon::DemonPruner;
using demon::NonFiniteGradients;
using namespace demon::testing;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct TrainRun {
  SmallCnn model;
  std::shared_ptr<torch::optim::AdamW> optimizer;
  std::unique_ptr<DemonPruner> pruner;
};

TrainRun make_run(DemonOptions options) {
  torch::manual_seed(0);
  TrainRun run{SmallCnn(), nullptr, nullptr};
  run.optimizer = std::make_shared<torch::optim::AdamW>(run.model->parameters(),
                                                        torch::optim::AdamWOptions(1e-2));
  run.pruner = std::make_unique<DemonPruner>(run.model, run.optimizer, options);
  return run;
}

// Forward and backward of one batch; `poison` then writes NaN or Inf into one gradient.
void backward(TrainRun& run, const Batch& batch, double poison = 0.0) {
  run.pruner->zero_grad();
  auto loss = torch::cross_entropy_loss(run.model->forward(batch.data), batch.target);
  run.pruner->backward(loss);
  if (poison != 0.0) {
    torch::NoGradGuard no_grad;
    run.model->conv2->weight.mutable_grad().view(-1)[3] = poison;
  }
}

// exp_avg, exp_avg_sq and step of every parameter, cloned.
std::vector<torch::Tensor> optimizer_state(TrainRun& run) {
  std::vector<torch::Tensor> out;
  for (const auto& p : run.model->parameters()) {
    const auto found = run.optimizer->state().find(demon::detail::optimizer_state_key(p));
    if (found == run.optimizer->state().end())
      continue;
    const auto& state = static_cast<torch::optim::AdamWParamState&>(*found->second);
    out.push_back(state.exp_avg().clone());
    out.push_back(state.exp_avg_sq().clone());
    out.push_back(torch::tensor(state.step()));
  }
  return out;
}

TEST(NonFiniteTest, NonFiniteGradientSkipsTheStepAndTouchesNothing) {
  for (const double poison : {kNaN, std::numeric_limits<double>::infinity()}) {
    auto run = make_run(DemonOptions(20).prune_every(50).lambda_peak(1e-2).sigma_peak(1e-3));
    const auto batch = small_batch();
    for (int i = 0; i < 2; ++i) {
      backward(run, batch);
      run.pruner->step();
    }
    const auto params = snapshot(*run.model);
    const auto state = optimizer_state(run);
    backward(run, batch, poison);
    run.pruner->step();
    expect_bitwise_equal(snapshot(*run.model), params, "parameters after a skipped step");
    expect_bitwise_equal(optimizer_state(run), state, "optimizer state after a skipped step");
    EXPECT_EQ(run.pruner->current_step(), 3);
    EXPECT_EQ(run.pruner->skipped_steps(), 1);
    // The next good step trains as usual.
    backward(run, batch);
    run.pruner->step();
    EXPECT_FALSE(torch::equal(snapshot(*run.model)[0], params[0]));
    EXPECT_EQ(run.pruner->skipped_steps(), 1);
  }
}

TEST(NonFiniteTest, ErrorNamesTheStepAndTheParameterAndChangesNothing) {
  auto run = make_run(DemonOptions(20).nonfinite_gradients(NonFiniteGradients::kError));
  const auto batch = small_batch();
  backward(run, batch);
  run.pruner->step();
  const auto params = snapshot(*run.model);
  const auto state = optimizer_state(run);
  backward(run, batch, kNaN);
  try {
    run.pruner->step();
    FAIL() << "a NaN gradient did not throw";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("step 1"), std::string::npos) << message;
    EXPECT_NE(message.find("conv2.weight"), std::string::npos) << message;
  }
  expect_bitwise_equal(snapshot(*run.model), params, "parameters after the error");
  expect_bitwise_equal(optimizer_state(run), state, "optimizer state after the error");
  EXPECT_EQ(run.pruner->current_step(), 1);
}

TEST(NonFiniteTest, SkippedStepsKeepSchedulesAndPruneEventsInStep) {
  // The loop skips every third step (as a loss scaler might): the pruner's clock, λ(t) and its
  // prune events follow the loop's steps, not the applied ones.
  const auto options = DemonOptions(30).prune_every(4).lambda_peak(1e-2);
  auto applied = make_run(options);
  auto skipping = make_run(options);
  const auto batch = small_batch();
  for (int64_t step = 0; step < 13; ++step) {
    backward(applied, batch);
    applied.pruner->step();
    backward(skipping, batch);
    const auto before = snapshot(*skipping.model);
    if (step % 3 == 2) {
      skipping.pruner->skip_step();
      expect_bitwise_equal(snapshot(*skipping.model), before, "parameters after skip_step");
    } else {
      skipping.pruner->step();
    }
    EXPECT_EQ(skipping.pruner->current_step(), applied.pruner->current_step());
    EXPECT_DOUBLE_EQ(skipping.pruner->current_lambda(), applied.pruner->current_lambda());
    EXPECT_EQ(skipping.pruner->prune_events(), applied.pruner->prune_events()) << "step " << step;
  }
  EXPECT_EQ(skipping.pruner->prune_events(), 3);
  EXPECT_EQ(skipping.pruner->skipped_steps(), 4);
}

TEST(NonFiniteTest, ANaNForwardIsNoEvidence) {
  // bn2's channels 0 and 1 are dead (scale and shift 0: ReLU outputs exactly 0). A run that meets
  // one NaN batch among good ones cuts exactly what its twin without that batch cuts: the NaN
  // pass neither hides the dead units nor condemns live ones.
  const auto options = DemonOptions(20).prune_every(100).lambda_peak(0.0).noise(false);
  auto kill = [](TrainRun& run) {
    torch::NoGradGuard no_grad;
    run.model->bn2->weight.narrow(0, 0, 2).zero_();
    run.model->bn2->bias.narrow(0, 0, 2).zero_();
  };
  auto clean = make_run(options);
  auto with_nan = make_run(options);
  kill(clean);
  kill(with_nan);
  const auto batch = small_batch();
  for (int i = 0; i < 3; ++i) {
    backward(clean, batch);
    clean.pruner->step();
    backward(with_nan, batch);
    with_nan.pruner->step();
  }
  {
    // A batch of NaN images: every activation is NaN, and so is every gradient (skipped).
    std::vector<torch::Tensor> buffers;
    for (const auto& b : with_nan.model->buffers())
      buffers.push_back(b.clone());
    backward(with_nan, {torch::full_like(batch.data, kNaN), batch.target});
    with_nan.pruner->step();
    EXPECT_EQ(with_nan.pruner->skipped_steps(), 1);
    // BatchNorm's running statistics took the NaN batch in; mending them is the loop's part.
    torch::NoGradGuard no_grad;
    auto now = with_nan.model->buffers();
    for (size_t i = 0; i < now.size(); ++i)
      now[i].copy_(buffers[i]);
  }
  const auto cut_clean = clean.pruner->prune_now();
  const auto cut_with_nan = with_nan.pruner->prune_now();
  EXPECT_EQ(cut_clean.units_removed, 2);
  EXPECT_EQ(cut_with_nan.units_removed, cut_clean.units_removed);
  EXPECT_EQ(with_nan.model->bn2->weight.size(0), 4);
}

TEST(NonFiniteTest, SkippedStepsSurviveACheckpoint) {
  auto run = make_run(DemonOptions(20));
  const auto batch = small_batch();
  backward(run, batch, kNaN);
  run.pruner->step();
  torch::serialize::OutputArchive out;
  run.pruner->save(out);
  std::ostringstream bytes;
  out.save_to(bytes);
  auto other = make_run(DemonOptions(20));
  torch::serialize::InputArchive in;
  std::istringstream read(bytes.str());
  in.load_from(read);
  other.pruner->load(in);
  EXPECT_EQ(other.pruner->skipped_steps(), 1);
  EXPECT_EQ(other.pruner->current_step(), 1);
}

}  // namespace
