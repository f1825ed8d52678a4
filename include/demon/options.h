#pragma once

#include <torch/arg.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "demon/budget.h"
#include "demon/schedule.h"

namespace demon {

/// Widths by group name.
using GroupWidths = std::map<std::string, int64_t>;

/// The penalty that pushes normalization scales (BatchNorm γ, LayerNorm/GroupNorm weight) to 0.
enum class Regularizer {
  kNone,
  kLasso,  ///< adds λ(t)·sign(γ) to γ's gradient (a sum over all γ, not a mean)
  kL2,     ///< adds λ(t)·γ to γ's gradient
};

/// How λ is shared among units.
enum class Pressure {
  /// Every scale entry gets λ: the paper's rule.
  kUniform,
  /// The default. Each prunable unit's entries get λ times the FLOPs that removing it alone
  /// saves, over the mean of the prunable units' (refreshed at every prune event), so the mean
  /// push stays λ and units of high-resolution layers and residual streams, which save the most,
  /// are pushed hardest. Units that cannot be cut keep λ; protect_floor's exemptions apply on
  /// top.
  kFlops,
  /// As kFlops, with each unit's saving estimated as time: its FLOPs plus element_flops times
  /// the activation elements it holds (DependencyGraph::unit_activations), which BatchNorm,
  /// ReLU, residual adds and the activations kept for backward scale with. It pushes
  /// high-resolution layers harder still, where memory-bound work makes a FLOP slowest.
  kTime,
};

/// Which weights receive the asymmetric noise σ(t)·N(0, 1) after each optimizer step.
enum class NoiseMode {
  /// Only elements whose loss gradient this step is non-zero: weights of live units. Dead units
  /// get exactly zero gradient, so they get no noise and stay dead. The paper's rule.
  kLiveOnly,
  /// Every element of every parameter (what the newest reference code does in effect).
  kAll,
};

/// Which evidence decides that a unit is dead at a prune event.
enum class DeathCheck {
  /// No unit output above epsilon in any training batch since the last prune event, read in
  /// training mode (BatchNorm with batch statistics). Free; exact on those batches in training
  /// mode. A unit dead under batch statistics can in principle be barely alive under running
  /// statistics, so eval-mode outputs are not guaranteed unchanged.
  kTrain,
  /// An eval-mode check (running statistics, dropout off) over the batches given to
  /// DemonPruner::set_death_check(), AND-ed over them, as in the reference code.
  kEval,
  /// Dead in both: exact in training mode on the training batches and in eval mode on the check
  /// batches.
  kBoth,
};

/// What a prune event does when the cut model no longer runs (a reshape with a fixed size over a
/// pruned axis, say). Checked with one forward pass without gradients on a sample input.
enum class ForwardCheck {
  /// Undo the cut, find the groups whose cut breaks the forward, pin them (with a warning that
  /// names them and the error), and cut the rest. Training goes on.
  kPin,
  /// Undo the cut and throw, naming the groups and the error; model, optimizer and pruner are as
  /// before the event.
  kError,
  /// No check.
  kOff,
};

/// What DemonPruner::step() does when a gradient holds NaN or Inf (a diverging loss, an fp16
/// overflow). Checked with one reduction per gradient and one host sync per step.
enum class NonFiniteGradients {
  /// Skip the step: no regularizer, optimizer step or noise, so parameters and optimizer state
  /// are untouched; the step counter still advances (schedules and prune events stay in step with
  /// the loop), and a warning counts the skips (DemonPruner::skipped_steps()).
  kSkip,
  /// Throw demon::RuntimeError naming the step and the parameter, before anything changes.
  kError,
  /// No check (no sync): the optimizer steps on whatever the gradients hold.
  kOff,
};

/// The built-in death criteria (see criterion.h); DemonPruner::set_criterion() installs others.
enum class CriterionKind {
  kDead,        ///< activations never above epsilon: the paper's rule, exact
  kQuasiDead,   ///< peak activation under quasi_dead_ratio × the group's mean; inexact
  kSmallScale,  ///< |γ| under scale_threshold, or the smallest scale_fraction; Network Slimming
};

std::string to_string(Regularizer regularizer);
std::string to_string(CriterionKind kind);
CriterionKind criterion_kind_from_string(const std::string& name);
std::string to_string(Pressure pressure);
Pressure pressure_from_string(const std::string& name);
std::string to_string(NoiseMode mode);
std::string to_string(DeathCheck check);
std::string to_string(ForwardCheck check);
std::string to_string(NonFiniteGradients action);
NonFiniteGradients nonfinite_gradients_from_string(const std::string& name);
Regularizer regularizer_from_string(const std::string& name);
NoiseMode noise_mode_from_string(const std::string& name);
DeathCheck death_check_from_string(const std::string& name);
ForwardCheck forward_check_from_string(const std::string& name);

/// Batches, so optimizer steps, in one epoch of `dataset_size` samples in batches of `batch_size`:
/// rounded up, or down with `drop_last` (as torch::data::DataLoaderOptions::drop_last). The value
/// DemonOptions::steps_per_epoch wants.
int64_t batches_per_epoch(int64_t dataset_size, int64_t batch_size, bool drop_last = false);
/// The former name of batches_per_epoch(), which DemonOptions::steps_per_epoch shares.
[[deprecated("use demon::batches_per_epoch")]] inline int64_t steps_per_epoch(
    int64_t dataset_size, int64_t batch_size, bool drop_last = false) {
  return batches_per_epoch(dataset_size, batch_size, drop_last);
}

/// Everything DemonPruner needs to know, with PyTorch-style chained setters:
/// ```
/// auto options = demon::DemonOptions().epochs(30).steps_per_epoch(391).prune_every(500);
/// auto same = demon::DemonOptions(/*total_steps=*/30 * 391).prune_every(500);
/// ```
/// JSON uses the setter names as keys (see to_json() / from_json()).
struct DemonOptions {
  explicit DemonOptions(int64_t total_steps = 0) : total_steps_(total_steps) {}

  /// Length of the training run in optimizer steps. Required (> 0), unless epochs and
  /// steps_per_epoch give it.
  TORCH_ARG(int64_t, total_steps);
  /// The run's length as epochs × steps per epoch (see demon::steps_per_epoch for a data set's
  /// size): both > 0, or both 0 when total_steps is given. If all three are given they must agree.
  TORCH_ARG(int64_t, epochs) = 0;
  TORCH_ARG(int64_t, steps_per_epoch) = 0;
  /// Steps over which λ(t) and σ(t) play out their shape; 0 means round(0.87 · total_steps),
  /// the ratio of the reference runs (85000 of 97656).
  TORCH_ARG(int64_t, schedule_span) = 0;
  /// The shape shared by λ(t) and σ(t).
  TORCH_ARG(ScheduleKind, schedule) = ScheduleKind::kOneCycle;
  TORCH_ARG(double, pct_start) = 0.3;
  TORCH_ARG(double, div_factor) = 25.0;
  TORCH_ARG(double, final_div_factor) = 1e4;

  TORCH_ARG(Regularizer, regularizer) = Regularizer::kLasso;
  /// Peak of λ(t), in the units of the loss gradient. It sets the sparsity reached. Unset (the
  /// default; "auto" in JSON): lambda_relative times what the loss pushes back with, measured
  /// (see GradientScale), so that one setting carries across models, losses and optimizers.
  TORCH_ARG(std::optional<double>, lambda_peak);
  /// With lambda_peak unset: λ's peak as a multiple of the scales' mean |∂L/∂γ| over the
  /// schedule's rise (under a budget: the budget's starting λ, over the first prune interval if
  /// shorter; GradientScale; finite and > 0). Units whose loss gradient pulls their scale
  /// less than this multiple of the average pull die. Larger prunes more: at 1 the units the loss
  /// needs least go without costing accuracy on the model panel of docs/results.md, while 2
  /// removes several times as many FLOPs and costs accuracy there.
  TORCH_ARG(double, lambda_relative) = 1.0;
  /// How λ is shared among units (see Pressure). kFlops by default: it pushes hardest where a
  /// cut saves the most compute, and it is the sharing that prunes every CNN of the model panel
  /// (docs/results.md) without costing accuracy.
  TORCH_ARG(Pressure, pressure) = Pressure::kFlops;
  /// Under Pressure::kTime, what one activation element per sample costs, in forward FLOPs
  /// (> 0, checked whatever the pressure). The default is of the order that step profiles of
  /// pruned ResNet-18s give on a CPU; tools/element_cost.py fits it on your machine from a
  /// bench_step_profile run.
  TORCH_ARG(double, element_flops) = 1000.0;

  TORCH_ARG(bool, noise) = true;
  TORCH_ARG(NoiseMode, noise_mode) = NoiseMode::kLiveOnly;
  /// Peak of σ(t), the standard deviation of the noise (not scaled by the learning rate).
  TORCH_ARG(double, sigma_peak) = 5e-5;
  /// Seed of the noise generator (one generator per device, each seeded with it).
  TORCH_ARG(uint64_t, seed) = 0;

  /// Remove dead units during training (false: pressure only, for ablations).
  TORCH_ARG(bool, prune) = true;
  /// A prune event after every `prune_every` steps. 0 (the default): a twentieth of the run, at
  /// least 100 steps (the reference pruned every 1000 of 15626 and 5000 of 97656 steps; a fixed
  /// interval gives a short run one event and a long one hundreds, and fewer than ~100 batches
  /// are thin evidence that a unit never fires). DemonPruner::options() holds the value in use.
  TORCH_ARG(int64_t, prune_every) = 0;
  /// No prune event before this step.
  TORCH_ARG(int64_t, prune_start) = 0;
  /// One more prune event when the step count reaches total_steps.
  TORCH_ARG(bool, prune_at_end) = true;
  /// Every channel group keeps at least this many units (see PruneOptions).
  TORCH_ARG(int64_t, min_width) = 1;
  /// ... and at least this fraction of its initial width.
  TORCH_ARG(double, min_width_fraction) = 0.0;
  /// Widths after a cut are rounded up to a multiple of this, keeping extra dead units (8 or 16
  /// can make pruned layers faster: vectorized CPU kernels and tensor cores work in such blocks).
  TORCH_ARG(int64_t, width_multiple) = 1;
  /// A unit is dead when |activation| <= epsilon everywhere; 0 is exact.
  TORCH_ARG(double, epsilon) = 0.0;
  TORCH_ARG(DeathCheck, death_check) = DeathCheck::kTrain;
  /// Which units a prune event removes, from that evidence.
  TORCH_ARG(CriterionKind, criterion) = CriterionKind::kDead;
  TORCH_ARG(double, quasi_dead_ratio) = 0.05;
  TORCH_ARG(double, scale_threshold) = 0.0;
  TORCH_ARG(double, scale_fraction) = 0.0;

  /// Collapse guard. A prune event removes at most this fraction of the live prunable units
  /// (the rest wait, with a warning); 1 = no cap.
  TORCH_ARG(double, max_cut_fraction) = 1.0;
  /// Floors of single groups by name (e.g. {"layer4_1.conv2", 64}), over min_width.
  TORCH_ARG(GroupWidths, group_min_width) = {};
  /// The floor's worth of strongest units (largest |γ|) of each group get no λ pressure, so no
  /// group can be pushed to death as a whole; refreshed at every prune event.
  TORCH_ARG(bool, protect_floor) = false;

  /// Budget: reach `target` (a fraction of the initial cost, 0 < target < 1; 0 = no budget, the
  /// paper's open-loop schedule) by step target_by · run_steps(). λ then follows a controller
  /// (see BudgetController), starting from lambda_peak (or lambda_relative), and cuts stop at the
  /// target.
  TORCH_ARG(double, target) = 0.0;
  TORCH_ARG(BudgetMetric, target_metric) = BudgetMetric::kFlops;
  TORCH_ARG(double, target_by) = 0.6;
  TORCH_ARG(double, controller_gain) = 2.0;
  /// Steps between the controller's projections (the cost if the units dead so far were cut);
  /// 0: a quarter of prune_every (the value in use).
  TORCH_ARG(int64_t, controller_every) = 0;
  /// The most λ may grow per prune interval (prune_every steps), >= 1: units die hundreds of
  /// steps after the pressure rises, and an unlimited controller keeps raising λ meanwhile
  /// (wind-up), then kills far more than it asked for. Shrinking is not limited. Unset (the
  /// default; "auto" in JSON): DemonPruner picks it from the optimizer, see
  /// default_controller_max_growth() in pruner.h.
  TORCH_ARG(std::optional<double>, controller_max_growth);
  /// The most λ may reach under a budget, as a multiple of its starting value (lambda_peak, or
  /// lambda_relative in the gradient scale's units), >= 1. Past a few times the loss's own pull
  /// on the scales, more λ does not cut the units the budget wants any sooner: it pushes every
  /// scale down at once, and training collapses. With the health guard on, the ceiling comes
  /// down to the λ in force once the training loss has risen half of health_rise. A budget that
  /// misses its date at the ceiling says so in a warning; raising this lets it push harder.
  TORCH_ARG(double, controller_max_lambda) = 4.0;
  /// A leading signal for the controller's projections: they also count the units that are
  /// dying, whose peak activation since the last event is at most `controller_lead` times their
  /// group's mean (as the quasi_dead criterion), so that λ stops rising when units start to
  /// fade, before they are dead. 0: only the units the criterion would cut.
  TORCH_ARG(double, controller_lead) = 0.0;
  /// Health guard (see HealthGuard): when the training loss's running average climbs back more
  /// than health_rise of the way from its lowest level to the first loss (a pressure crushing
  /// units the model needs undoes what it learned, towards chance), λ is held at 0 until the
  /// loss recovers, then applies at health_backoff of its former strength; a warning gives the
  /// step and the losses, and summary() lists every such event. The loss is averaged over
  /// health_window steps on its device and read at the budget controller's cadence
  /// (controller_every), so the guard adds no host sync per step.
  TORCH_ARG(bool, health_guard) = true;
  TORCH_ARG(double, health_rise) = 0.25;
  TORCH_ARG(int64_t, health_window) = 50;
  TORCH_ARG(double, health_backoff) = 0.5;
  /// After each prune event, check that the cut model still runs (see ForwardCheck and
  /// DemonPruner::set_probe_input).
  TORCH_ARG(ForwardCheck, forward_check) = ForwardCheck::kPin;
  /// A step whose gradients hold NaN or Inf: skipped (default), an error, or not checked.
  TORCH_ARG(NonFiniteGradients, nonfinite_gradients) = NonFiniteGradients::kSkip;
  /// When DemP cannot act (no normalization scale for λ, no prunable unit), throw instead of
  /// warning.
  TORCH_ARG(bool, error_if_inactive) = false;

 public:
  /// Throws demon::ValueError naming the first invalid option.
  void validate() const;
  /// The run's length: total_steps, or epochs × steps_per_epoch.
  int64_t run_steps() const;
  /// prune_every, with 0 resolved to max(100, round(run_steps() / 20)).
  int64_t effective_prune_every() const;
  /// schedule_span, with 0 resolved to round(0.87 · run_steps()) (at least 1).
  int64_t effective_span() const;
  /// λ(t): the schedule shape with peak lambda_peak, or with peak lambda_relative when it is
  /// unset (then in units of GradientScale's measure, which DemonPruner multiplies in).
  Schedule lambda_schedule() const;
  /// The steps over which an automatic λ's unit is measured: int(pct_start · effective_span()),
  /// at least 1. Under the one-cycle schedule that is λ's rise; other shapes use as many first
  /// steps, whatever λ does in them.
  int64_t lambda_rise_steps() const;
  /// σ(t): the same shape with peak sigma_peak.
  Schedule sigma_schedule() const;

  /// Every option under its setter's name; enums as strings ("lasso", "live_only", "one_cycle"),
  /// an unset lambda_peak as "auto".
  nlohmann::json to_json() const;
  /// Starts from the defaults and applies each key of `json` (an object). Throws
  /// demon::ValueError naming the key for an unknown key, a wrong type or an invalid value.
  /// The run's length may be absent (left 0, to be set before the pruner is built).
  static DemonOptions from_json(const nlohmann::json& json);

  /// Reads options written by save() or by hand; unknown keys and wrong types are errors.
  static DemonOptions load(const std::string& path);
  /// Writes to_json() as pretty JSON, atomically (temporary file, then rename).
  void save(const std::string& path) const;
};

/// The former spellings of DemonOptions::to_json() and DemonOptions::from_json().
[[deprecated("use DemonOptions::to_json()")]] inline nlohmann::json to_json(
    const DemonOptions& options) {
  return options.to_json();
}
[[deprecated("use DemonOptions::from_json()")]] inline DemonOptions options_from_json(
    const nlohmann::json& json) {
  return DemonOptions::from_json(json);
}

// ADL hooks, so that `nlohmann::json j = options;` and `j.get<DemonOptions>()` work.
void to_json(nlohmann::json& json, const DemonOptions& options);
void from_json(const nlohmann::json& json, DemonOptions& options);

}  // namespace demon
