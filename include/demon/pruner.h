#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "demon/activity.h"
#include "demon/budget.h"
#include "demon/criterion.h"
#include "demon/data_parallel_options.h"
#include "demon/gradient_scale.h"
#include "demon/graph.h"
#include "demon/health.h"
#include "demon/model_ref.h"
#include "demon/noise.h"
#include "demon/options.h"
#include "demon/regularizer.h"
#include "demon/report.h"
#include "demon/schedule.h"
#include "demon/surgery.h"

namespace demon {

/// controller_max_growth that DemonPruner uses when it is unset, by the optimizer's family: 8 per
/// prune interval for adaptive ones, whose steps on γ stay near the learning rate however large
/// λ grows; 2 for SGD-like ones, whose step lr·λ grows with λ, so that a λ wound up crushes every
/// scale (docs/guide.md, "Budgets").
double default_controller_max_growth(const torch::optim::Optimizer& optimizer);

/// Demon Pruning for an existing LibTorch training loop. It wraps the optimizer; the loop reads:
/// ```
/// demon::DemonPruner pruner(model, optimizer,
/// demon::DemonOptions().epochs(10).steps_per_epoch(n)); for (auto& batch : *loader) {
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
///
/// Each prune event checks that the cut model still runs (DemonOptions::forward_check): one
/// forward pass without gradients, in eval mode, on a two-sample probe input. A cut that breaks
/// it (typically a reshape with a fixed size, `x.view({-1, 320})`, after a pruned layer) is
/// undone; the groups whose cut breaks it are pinned with a warning (kPin) or named in an error
/// (kError). The probe needs the model's forward (known when the model is passed as a
/// TORCH_MODULE holder or a module with forward(Tensor), or set_forward()) and an input (found in
/// the autograd graph when the first layer is a convolution, linear or embedding layer, or
/// set_probe_input()); without them a warning says that cuts go unchecked.
class DemonPruner {
 public:
  /// Runs the model on a batch (eval-mode death check, forward check); demon::Forward.
  using Forward = demon::Forward;

  /// `model` and `optimizer` as the loop holds them: shared_ptr, TORCH_MODULE holder, or by
  /// reference (then not owned: they must outlive the pruner). Throws demon::ValueError for
  /// a null model or optimizer, invalid options, or an optimizer that cannot be stepped without
  /// a closure (LBFGS). Warns (or throws, with error_if_inactive) when no normalization scale is
  /// there for λ to act on.
  DemonPruner(ModelRef model, OptimizerRef optimizer, DemonOptions options);

  /// The wrapped optimizer's zero_grad().
  void zero_grad();
  /// Reads activity from `loss`'s autograd graph (when pruning is on), then loss.backward().
  void backward(const torch::Tensor& loss);
  /// Regularize, step the optimizer, add noise, advance the step counter, prune when due. A
  /// gradient holding NaN or Inf skips the step (see skip_step) or throws, as
  /// DemonOptions::nonfinite_gradients says.
  void step();
  /// For a step the loop decided not to apply (a loss scaler found Inf, say): advances the step
  /// counter, so λ(t), σ(t), the budget plan and prune events stay in step with the loop, and
  /// prunes when due; touches no parameter, gradient or optimizer state.
  void skip_step();
  /// Steps skipped so far (skip_step() and non-finite gradients), saved in checkpoints.
  int64_t skipped_steps() const noexcept { return skipped_steps_; }

  /// A prune event now, from the evidence gathered so far. Empty (nothing removed) before the
  /// first backward().
  PruneReport prune_now();

  /// The eval-mode death check: runs `forward` on each batch with the model in eval mode
  /// (restored afterwards) and returns the prunable units whose activations are <= epsilon on
  /// every batch (AND over batches). Prunes nothing. Needs one backward() first.
  std::vector<int64_t> check_death(const std::vector<torch::Tensor>& batches,
                                   const Forward& forward);
  /// Batches and forward function for the eval-mode check of prune events (DeathCheck kEval,
  /// kBoth). The reference used 3 batches of 512 training images. Without `forward`, the model's
  /// own (see set_forward).
  void set_death_check(std::vector<torch::Tensor> batches, Forward forward = {});

  /// How to run the model on one input tensor, when the constructor could not know it (a model
  /// passed as a plain std::shared_ptr<torch::nn::Module>) or it needs more (autocast, a
  /// different entry point).
  void set_forward(Forward forward);
  /// How the structure is discovered from the first loss (couplings and pins the walker cannot
  /// see, the model's own element-wise ops; see graph.h). Before the first backward(): throws
  /// demon::StateError after it.
  void set_discovery_options(DiscoveryOptions options);
  /// The input of the forward check after each prune event; its first two samples are kept.
  /// Without it, the network input found in the autograd graph at discovery is used.
  void set_probe_input(const torch::Tensor& input);

  /// Trains data-parallel on the group's ranks, one DemonPruner per rank, each on its own share
  /// of every batch: step() averages the gradients over the ranks before anything reads them
  /// (bucketed all-reduce), the activity evidence of a prune event (training passes and the
  /// eval-mode death check, each rank on its own check batches) is the largest any rank saw, and
  /// the ranks confirm they cut the same units; the regularizer and noise act on identical
  /// gradients with identical seeds, so the replicas stay identical. Rank 0's parameters and
  /// buffers are copied to all ranks now (DataParallelOptions::broadcast_parameters). BatchNorm
  /// running statistics stay per rank. From here on step(), prune_now(), check_death() and the
  /// budget's projections are collectives: every rank calls them at the same point.
  void set_process_group(c10::intrusive_ptr<ProcessGroup> group, DataParallelOptions options = {});
  /// This rank and the number of ranks (0 and 1 without a process group).
  int rank() const;
  int world_size() const;

  /// Called at a prune event before anything is removed, with the step.
  void on_before_prune(std::function<void(int64_t step)> callback);
  /// Called after each prune event with its report.
  void on_prune(std::function<void(const PruneReport&)> callback);

  /// Number of step() calls completed: the index t of the step the next step() performs.
  int64_t current_step() const noexcept { return step_; }
  /// λ(t) that the next step() applies: the schedule's, or the budget controller's, times the
  /// health guard's factor. With an automatic λ, 0 before the first step, which measures its unit.
  double current_lambda() const;
  /// The peak of λ(t): DemonOptions::lambda_peak, or with it unset lambda_relative times the
  /// loss gradient's scale measured so far (see gradient_scale(); 0 before the first step).
  double lambda_peak() const;
  /// σ(t) that the next step() applies (0 when noise is off, or once a budget is reached).
  double current_sigma() const;

  /// Installs another death criterion (see criterion.h) instead of DemonOptions::criterion.
  void set_criterion(std::shared_ptr<DeathCriterion> criterion);
  const DeathCriterion& criterion() const noexcept { return *criterion_; }
  /// The cost a budget with target_metric kCustom is a fraction of, for the model at its
  /// current widths (e.g. a sum of measured per-layer latencies). Its value at discovery is the
  /// initial cost.
  void set_cost(std::function<double(const DependencyGraph&)> cost);
  /// The health guard, unless DemonOptions::health_guard is off or there is no λ to back off.
  const HealthGuard* health() const noexcept { return health_ ? &*health_ : nullptr; }
  /// What an automatic λ is measured in, when DemonOptions::lambda_peak is unset and there is a
  /// regularizer (see GradientScale).
  const GradientScale* gradient_scale() const noexcept {
    return gradient_scale_ ? &*gradient_scale_ : nullptr;
  }
  /// The budget controller, when DemonOptions::target is set.
  const BudgetController* budget() const noexcept { return budget_ ? &*budget_ : nullptr; }
  /// The cost now as a fraction of the initial one, in the budget's metric (FLOPs by default).
  double cost_ratio() const;
  int64_t prune_events() const noexcept { return prune_events_; }

  /// Widths, sparsity and FLOPs now, against the model as first seen, with any warning about
  /// what DemP cannot do on this model.
  ModelSummary summary() const;
  /// Warnings given so far (each also went to demon::warn once).
  const std::vector<std::string>& warnings() const noexcept { return warnings_; }
  /// The discovered structure (null before the first backward(), or with pruning off).
  const DependencyGraph* graph() const { return graph_ ? &*graph_ : nullptr; }
  const ActivityTracker& activity() const noexcept { return activity_; }
  const DemonOptions& options() const noexcept { return options_; }
  torch::nn::Module& model() noexcept { return model_.get(); }
  torch::optim::Optimizer& optimizer() noexcept { return *optimizer_.get(); }
  const ScaleRegularizer& regularizer() const noexcept { return regularizer_; }

  /// The pruner's own state (step, prune count, noise generators, activity since the last prune,
  /// the initial summary, groups pinned by the forward check) for checkpoints; see checkpoint.h.
  void save(torch::serialize::OutputArchive& archive) const;
  /// Throws demon::ValueError, and changes nothing, for state of other options or damaged.
  void load(torch::serialize::InputArchive& archive);

 private:
  void load_state(torch::serialize::InputArchive& archive);
  void discover(const torch::Tensor& root);
  bool prune_due() const;
  bool prune_due_at(int64_t step) const;
  // Throws, before anything changes, when `step` is a prune event that needs check batches.
  void require_death_check_data(int64_t step) const;
  // After a step, applied or skipped: advance the counter, check the loss's health, then prune
  // or steer the budget.
  void finish_step();
  // Steps between the budget controller's projections, and the health guard's checks.
  int64_t check_every() const;
  // Reads the health guard's running loss (the ranks' worst) and lets it act; warns when it trips.
  void check_health();
  // What λ's schedule and the budget controller's λ are multiplied by: the measured gradient
  // scale for an automatic λ, else 1.
  double lambda_unit() const;
  // The evidence of the death check (training activity, eval-mode pass, or both) and the units
  // the criterion picks from it.
  UnitEvidence evidence(bool train_only);
  // Per unit: the peak of an eval-mode pass over `batches` (the eval-mode death check).
  std::vector<double> eval_peaks(const std::vector<torch::Tensor>& batches, const Forward& forward);
  // What a cut of `units` (none: the model as it is) would leave of the budget's cost, as a
  // fraction of the initial cost.
  double cost_ratio_without(const std::vector<int64_t>* units) const;
  // The regularizer's per-entry weights: the pressure option's share, 0 for protected floors.
  void update_pressure();
  PruneOptions cut_options() const;
  // Gives a warning once (by text), or throws it with error_if_inactive when `inaction` says so.
  void report_problem(const std::string& message, bool inaction);
  // Whether the forward check can run; warns once when it cannot.
  bool probe_ready();
  // Cuts `dead`, checked by the probe (src/pruner/forward_check.h); pins the groups whose cut
  // breaks the forward. Sets the report's output change when the probe ran.
  PruneResult checked_cut(const std::vector<int64_t>& dead, PruneReport& report);
  void pin_group(int group, const std::string& reason);
  // Where data-parallel collectives run: the model's device (NCCL takes CUDA tensors only).
  torch::Device collective_device();

  ModelRef model_;
  OptimizerRef optimizer_;
  DemonOptions options_;
  Schedule lambda_schedule_;
  Schedule sigma_schedule_;
  ScaleRegularizer regularizer_;
  std::optional<AsymmetricNoise> noise_;
  std::optional<DependencyGraph> graph_;
  ActivityTracker activity_;
  std::optional<ModelSummary> initial_;
  // The model's figures when the checkpoint was written: summary() until the graph is
  // rediscovered (a loaded pruned model is not the initial one).
  std::optional<ModelSummary> restored_;
  std::vector<torch::Tensor> check_batches_;
  Forward check_forward_;
  Forward forward_;
  torch::Tensor probe_input_;
  bool probe_input_given_ = false;
  bool probe_unusable_ = false;
  bool cut_since_backward_ = false;  // a new structure at the next backward is the cut's doing
  // Groups pinned because cutting them broke the forward: name -> reason (kept across
  // rediscovery and checkpoints).
  std::map<std::string, std::string> pinned_groups_;
  std::vector<std::string> warnings_;
  std::shared_ptr<DeathCriterion> criterion_;
  std::optional<BudgetController> budget_;
  std::optional<HealthGuard> health_;
  std::optional<GradientScale> gradient_scale_;
  std::function<double(const DependencyGraph&)> cost_;
  double initial_cost_ = 0.0;
  // Each group's width when first discovered (rediscovery after a cut starts them anew).
  std::map<std::string, int64_t> initial_group_sizes_;
  int64_t initial_graph_parameters_ = 0;
  std::vector<std::function<void(int64_t)>> before_prune_;
  std::vector<std::function<void(const PruneReport&)>> after_prune_;
  // Activity restored from a checkpoint, adopted at the next discovery.
  std::optional<std::pair<std::vector<torch::Tensor>, int64_t>> restored_activity_;
  DiscoveryOptions discovery_;
  // The collectives of set_process_group (src/detail/data_parallel.h).
  class DataParallel;
  std::shared_ptr<DataParallel> data_parallel_;
  int64_t step_ = 0;
  int64_t prune_events_ = 0;
  int64_t skipped_steps_ = 0;
};

}  // namespace demon
