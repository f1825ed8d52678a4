#pragma once

#include <torch/arg.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "demon/schedule.h"

namespace demon {

/// The penalty that pushes normalization scales (BatchNorm γ, LayerNorm/GroupNorm weight) to 0.
enum class Regularizer {
  kNone,
  kLasso,  ///< adds λ(t)·sign(γ) to γ's gradient (a sum over all γ, not a mean)
  kL2,     ///< adds λ(t)·γ to γ's gradient
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

std::string to_string(Regularizer regularizer);
std::string to_string(NoiseMode mode);
std::string to_string(DeathCheck check);
Regularizer regularizer_from_string(const std::string& name);
NoiseMode noise_mode_from_string(const std::string& name);
DeathCheck death_check_from_string(const std::string& name);

/// Everything DemonPruner needs to know, with PyTorch-style chained setters:
/// ```
/// auto options = demon::DemonOptions(/*total_steps=*/97656).lambda_peak(0.2).sigma_peak(5e-5);
/// ```
/// JSON uses the setter names as keys (see to_json / options_from_json).
struct DemonOptions {
  explicit DemonOptions(int64_t total_steps = 0) : total_steps_(total_steps) {}

  /// Length of the training run in optimizer steps. Required (> 0).
  TORCH_ARG(int64_t, total_steps);
  /// Steps over which λ(t) and σ(t) play out their shape; 0 means round(0.87 · total_steps),
  /// the ratio of the reference runs (85000 of 97656).
  TORCH_ARG(int64_t, schedule_span) = 0;
  /// The shape shared by λ(t) and σ(t).
  TORCH_ARG(ScheduleKind, schedule) = ScheduleKind::kOneCycle;
  TORCH_ARG(double, pct_start) = 0.3;
  TORCH_ARG(double, div_factor) = 25.0;
  TORCH_ARG(double, final_div_factor) = 1e4;

  TORCH_ARG(Regularizer, regularizer) = Regularizer::kLasso;
  /// Peak of λ(t). It sets the sparsity reached and depends on the optimizer: the reference
  /// swept 1e-5..1e-2 with SGD-momentum and up to 0.35 with Adam (one-cycle).
  TORCH_ARG(double, lambda_peak) = 1e-3;

  TORCH_ARG(bool, noise) = true;
  TORCH_ARG(NoiseMode, noise_mode) = NoiseMode::kLiveOnly;
  /// Peak of σ(t), the standard deviation of the noise (not scaled by the learning rate).
  TORCH_ARG(double, sigma_peak) = 5e-5;
  /// Seed of the noise generator (one generator per device, each seeded with it).
  TORCH_ARG(uint64_t, seed) = 0;

  /// Remove dead units during training (false: pressure only, for ablations).
  TORCH_ARG(bool, prune) = true;
  /// A prune event after every `prune_every` steps (the reference: 1000 of 15626, 5000 of 97656).
  TORCH_ARG(int64_t, prune_every) = 1000;
  /// No prune event before this step.
  TORCH_ARG(int64_t, prune_start) = 0;
  /// One more prune event when the step count reaches total_steps.
  TORCH_ARG(bool, prune_at_end) = true;
  /// Every channel group keeps at least this many units.
  TORCH_ARG(int64_t, min_width) = 1;
  /// A unit is dead when |activation| <= epsilon everywhere; 0 is exact.
  TORCH_ARG(double, epsilon) = 0.0;
  TORCH_ARG(DeathCheck, death_check) = DeathCheck::kTrain;

 public:
  /// Throws std::invalid_argument naming the first invalid option.
  void validate() const;
  /// schedule_span, with 0 resolved to round(0.87 · total_steps) (at least 1).
  int64_t effective_span() const;
  /// λ(t): the schedule shape with peak lambda_peak.
  Schedule lambda_schedule() const;
  /// σ(t): the same shape with peak sigma_peak.
  Schedule sigma_schedule() const;

  /// Reads options written by save() or by hand; unknown keys and wrong types are errors.
  static DemonOptions load(const std::string& path);
  /// Writes the options as pretty JSON, atomically (temporary file, then rename).
  void save(const std::string& path) const;
};

/// Every option under its setter's name; enums as strings ("lasso", "live_only", "one_cycle").
nlohmann::json to_json(const DemonOptions& options);
/// Starts from the defaults and applies each key of `json` (an object). Throws
/// std::invalid_argument naming the key for an unknown key, a wrong type or an invalid value.
/// total_steps may be absent (left 0, to be set before the pruner is built).
DemonOptions options_from_json(const nlohmann::json& json);

// ADL hooks, so that `nlohmann::json j = options;` and `j.get<DemonOptions>()` work.
void to_json(nlohmann::json& json, const DemonOptions& options);
void from_json(const nlohmann::json& json, DemonOptions& options);

}  // namespace demon
