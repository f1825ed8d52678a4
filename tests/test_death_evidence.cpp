// The evidence of a prune event (src/pruner/death_evidence.h) on its own: which passes a death
// check runs, how their peaks combine, and the eval-mode pass itself.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>
#include <vector>

#include "demon/demon.h"
#include "pruner/death_evidence.h"

namespace {

using demon::DeathCheck;

struct SmallNet {
  SmallNet()
      : model(torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)), torch::nn::BatchNorm2d(4),
              torch::nn::ReLU(), torch::nn::Flatten(), torch::nn::Linear(4 * 6 * 6, 2)),
        graph(demon::DependencyGraph::discover(*model, model->forward(torch::randn({2, 3, 8, 8})))),
        units(graph.units().size()) {}
  torch::nn::Sequential model;
  demon::DependencyGraph graph;
  size_t units;
};

// An eval-mode pass that records whether it ran.
struct EvalPass {
  explicit EvalPass(std::vector<double> returned) : peaks(std::move(returned)) {}
  std::function<std::vector<double>()> function() {
    return [this] {
      ++calls;
      return peaks;
    };
  }
  std::vector<double> peaks;
  int calls = 0;
};

TEST(DeathEvidenceTest, TrainingEvidenceRunsNoEvalPass) {
  SmallNet net;
  const std::vector<double> train(net.units, 1.0);
  EvalPass eval(std::vector<double>(net.units, 0.0));
  const auto evidence = demon::detail::death_evidence(net.graph, DeathCheck::kTrain, train, true,
                                                      0.0, eval.function());
  EXPECT_EQ(eval.calls, 0);
  EXPECT_EQ(evidence.peak, train);
  EXPECT_EQ(evidence.graph, &net.graph);
  EXPECT_EQ(evidence.scale.size(), net.units);
}

TEST(DeathEvidenceTest, BothTakesTheLargerPeakAndSparesTheEvalPassWhenNothingIsDead) {
  SmallNet net;
  std::vector<double> train(net.units, 1.0);
  EvalPass eval(std::vector<double>(net.units, 2.0));
  // The exact criterion and nothing dead in training mode: nothing can be dead in both.
  auto evidence = demon::detail::death_evidence(net.graph, DeathCheck::kBoth, train, true, 0.0,
                                                eval.function());
  EXPECT_EQ(eval.calls, 0);
  EXPECT_EQ(evidence.peak, train);
  // Another criterion needs the eval-mode peaks anyway.
  evidence = demon::detail::death_evidence(net.graph, DeathCheck::kBoth, train, false, 0.0,
                                           eval.function());
  EXPECT_EQ(eval.calls, 1);
  EXPECT_EQ(evidence.peak, std::vector<double>(net.units, 2.0));
  // A unit dead in training mode: the eval pass runs, and each unit keeps its larger peak.
  train[0] = 0.0;
  eval.peaks[0] = 0.0;
  eval.peaks[1] = 0.5;
  evidence = demon::detail::death_evidence(net.graph, DeathCheck::kBoth, train, true, 0.0,
                                           eval.function());
  EXPECT_EQ(eval.calls, 2);
  EXPECT_EQ(evidence.peak[0], 0.0);
  EXPECT_EQ(evidence.peak[1], 1.0);
  EXPECT_EQ(evidence.peak[2], 2.0);
}

TEST(DeathEvidenceTest, EvalEvidenceIsTheEvalPassAlone) {
  SmallNet net;
  EvalPass eval(std::vector<double>(net.units, 3.0));
  const auto evidence = demon::detail::death_evidence(net.graph, DeathCheck::kEval,
                                                      std::vector<double>(net.units, 1.0), true,
                                                      0.0, eval.function());
  EXPECT_EQ(eval.calls, 1);
  EXPECT_EQ(evidence.peak, eval.peaks);
}

TEST(DeathEvidenceTest, TheEvalPassReadsPeaksInEvalModeAndRestoresTheMode) {
  torch::manual_seed(0);
  SmallNet net;
  const demon::Forward forward = [&](const torch::Tensor& x) { return net.model->forward(x); };
  net.model->train();
  const auto peaks = demon::detail::eval_mode_peaks(net.graph, *net.model, forward,
                                                    {torch::randn({4, 3, 8, 8})}, 0.0);
  EXPECT_TRUE(net.model->is_training());
  ASSERT_EQ(peaks.size(), net.units);
  // BatchNorm in eval mode at its initial running statistics passes the convolution through:
  // the peak of a unit is the largest ReLU of its channel.
  EXPECT_GT(*std::max_element(peaks.begin(), peaks.end()), 0.0);
  // A forward that runs other activations than the training graph's is refused.
  const demon::Forward other = [](const torch::Tensor& x) { return x.sum({1, 2, 3}); };
  EXPECT_THROW(demon::detail::eval_mode_peaks(net.graph, *net.model, other,
                                              {torch::randn({4, 3, 8, 8})}, 0.0),
               demon::RuntimeError);
}

}  // namespace
