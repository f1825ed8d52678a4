#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "demon/activity.h"
#include "demon/graph.h"
#include "demon/noise.h"
#include "demon/options.h"
#include "demon/regularizer.h"
#include "demon/report.h"
#include "demon/schedule.h"

namespace demon {

/// Demon Pruning for an existing LibTorch training loop. It wraps the optimizer; the loop reads:
/// ```
/// demon::DemonPruner pruner(model.ptr(), optimizer, demon::DemonOptions(total_steps));
/// for (auto& batch : *loader) {
///   pruner.zero_grad();
///   auto loss = torch::cross_entropy_loss(model->forward(batch.data), batch.target);
///   pruner.backward(loss);  // reads activity from the graph, then loss.backward()
///   pruner.step();          // regularize, optimizer step, noise, prune when due
/// }
/// ```
/// backward() discovers the model's channel structure from the first loss's autograd graph,
/// then reads every activation's output before running backward, ORing per-unit "was active"
/// flags on the device. step() records which weights are live (non-zero loss gradient), adds the
/// regularizer's λ(t) term to the normalization scales' gradients, steps the optimizer, adds
/// σ(t) noise to the live weights, advances t, and on a prune step removes the dead units from
/// the model and the optimizer state in place.
///
/// After a prune event, parameters are smaller but the same tensors: the optimizer and the
/// module keep working. Anything else holding derived state (a DDP wrapper, a CUDA graph, a
/// tensor of the parameters' old shape) must be rebuilt; on_prune() is the place to do it.
class DemonPruner {
 public:
  /// Runs the model on a batch (used by the eval-mode death check).
  using Forward = std::function<torch::Tensor(const torch::Tensor&)>;

  /// Throws std::invalid_argument for a null model or optimizer, invalid options, or an optimizer
  /// that cannot be stepped without a closure (LBFGS).
  DemonPruner(std::shared_ptr<torch::nn::Module> model,
              std::shared_ptr<torch::optim::Optimizer> optimizer, DemonOptions options);

  /// The wrapped optimizer's zero_grad().
  void zero_grad();
  /// Reads activity from `loss`'s autograd graph (when pruning is on), then loss.backward().
  void backward(const torch::Tensor& loss);
  /// Regularize, step the optimizer, add noise, advance the step counter, prune when due.
  void step();

  /// A prune event now, from the evidence gathered so far. Empty (nothing removed) before the
  /// first backward().
  PruneReport prune_now();

  /// The eval-mode death check: runs `forward` on each batch with the model in eval mode
  /// (restored afterwards) and returns the prunable units whose activations are <= epsilon on
  /// every batch (AND over batches). Prunes nothing. Needs one backward() first.
  std::vector<int64_t> check_death(const std::vector<torch::Tensor>& batches,
                                   const Forward& forward);
  /// Batches and forward function for the eval-mode check of prune events (DeathCheck kEval,
  /// kBoth). The reference used 3 batches of 512 training images.
  void set_death_check(std::vector<torch::Tensor> batches, Forward forward);

  /// Called at a prune event before anything is removed, with the step.
  void on_before_prune(std::function<void(int64_t step)> callback);
  /// Called after each prune event with its report.
  void on_prune(std::function<void(const PruneReport&)> callback);

  /// Number of step() calls completed: the index t of the step the next step() performs.
  int64_t current_step() const noexcept { return step_; }
  /// λ(t) that the next step() applies.
  double current_lambda() const { return lambda_schedule_(step_); }
  /// σ(t) that the next step() applies (0 when noise is off).
  double current_sigma() const { return options_.noise() ? sigma_schedule_(step_) : 0.0; }
  int64_t prune_events() const noexcept { return prune_events_; }

  /// Widths, sparsity and FLOPs now, against the model as first seen.
  ModelSummary summary() const;
  /// The discovered structure (null before the first backward(), or with pruning off).
  const DependencyGraph* graph() const { return graph_ ? &*graph_ : nullptr; }
  const ActivityTracker& activity() const noexcept { return activity_; }
  const DemonOptions& options() const noexcept { return options_; }
  torch::nn::Module& model() noexcept { return *model_; }
  torch::optim::Optimizer& optimizer() noexcept { return *optimizer_; }
  const ScaleRegularizer& regularizer() const noexcept { return regularizer_; }

  /// The pruner's own state (step, prune count, noise generators, activity since the last prune,
  /// the initial summary) for checkpoints; see checkpoint.h.
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  void discover(const torch::Tensor& root);
  bool prune_due() const;
  std::vector<int64_t> dead_units();

  std::shared_ptr<torch::nn::Module> model_;
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  DemonOptions options_;
  Schedule lambda_schedule_;
  Schedule sigma_schedule_;
  ScaleRegularizer regularizer_;
  std::optional<AsymmetricNoise> noise_;
  std::optional<DependencyGraph> graph_;
  ActivityTracker activity_;
  std::optional<ModelSummary> initial_;
  std::vector<torch::Tensor> check_batches_;
  Forward check_forward_;
  std::vector<std::function<void(int64_t)>> before_prune_;
  std::vector<std::function<void(const PruneReport&)>> after_prune_;
  // Activity restored from a checkpoint, adopted at the next discovery.
  std::optional<std::pair<std::vector<torch::Tensor>, int64_t>> restored_activity_;
  int64_t step_ = 0;
  int64_t prune_events_ = 0;
};

}  // namespace demon
