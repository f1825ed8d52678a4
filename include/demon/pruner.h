#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "demon/noise.h"
#include "demon/options.h"
#include "demon/regularizer.h"
#include "demon/schedule.h"

namespace demon {

/// Demon Pruning for an existing LibTorch training loop. It wraps the optimizer; the loop reads:
/// ```
/// demon::DemonPruner pruner(model.ptr(), optimizer, demon::DemonOptions(total_steps));
/// for (auto& batch : *loader) {
///   pruner.zero_grad();
///   auto loss = torch::cross_entropy_loss(model->forward(batch.data), batch.target);
///   pruner.backward(loss);
///   pruner.step();
/// }
/// ```
/// step() does, in order: record which weights are live (non-zero loss gradient), add the
/// regularizer's λ(t) term to the normalization scales' gradients, step the wrapped optimizer,
/// add σ(t) noise to the live weights, and advance t.
///
/// The pruner holds the model and optimizer by shared_ptr; both must outlive nothing else.
/// Weight decay stays the optimizer's business.
class DemonPruner {
 public:
  /// Throws std::invalid_argument for a null model or optimizer, invalid options, or an optimizer
  /// that cannot be stepped without a closure (LBFGS).
  DemonPruner(std::shared_ptr<torch::nn::Module> model,
              std::shared_ptr<torch::optim::Optimizer> optimizer, DemonOptions options);

  /// The wrapped optimizer's zero_grad().
  void zero_grad();
  /// Runs loss.backward().
  void backward(const torch::Tensor& loss);
  /// Regularize, step the optimizer, add noise, advance the step counter.
  void step();

  /// Number of step() calls completed: the index t of the step the next step() performs.
  int64_t current_step() const noexcept { return step_; }
  /// λ(t) that the next step() applies.
  double current_lambda() const { return lambda_schedule_(step_); }
  /// σ(t) that the next step() applies (0 when noise is off).
  double current_sigma() const { return options_.noise() ? sigma_schedule_(step_) : 0.0; }

  const DemonOptions& options() const noexcept { return options_; }
  torch::nn::Module& model() noexcept { return *model_; }
  torch::optim::Optimizer& optimizer() noexcept { return *optimizer_; }
  const ScaleRegularizer& regularizer() const noexcept { return regularizer_; }

 private:
  std::shared_ptr<torch::nn::Module> model_;
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  DemonOptions options_;
  Schedule lambda_schedule_;
  Schedule sigma_schedule_;
  ScaleRegularizer regularizer_;
  std::optional<AsymmetricNoise> noise_;
  int64_t step_ = 0;
};

}  // namespace demon
