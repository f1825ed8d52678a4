#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace demon {

/// The cost a budget is a fraction of.
enum class BudgetMetric {
  kFlops,       ///< forward FLOPs per sample of convolution and linear layers
  kParameters,  ///< elements of all parameters
  kCustom,      ///< DemonPruner::set_cost()
};
std::string to_string(BudgetMetric metric);
BudgetMetric budget_metric_from_string(const std::string& name);

/// Closed-loop λ for "reach `target` of the cost by step `by`": the regularizer's strength
/// follows how far the measured cost ratio is from a planned trajectory.
///
/// Plan: r*(t) = target + (1 − target)·(1 + cos(π·t/by))/2 for t < by, then target: flat at the
/// start, where a young network loses units cheaply, and flat at the end.
///
/// Law, at each measurement (prune events, and projections between them) of the cost ratio r at
/// step t: log λ ← log λ + min(gain·(r − r*(t)) / (1 − target), log(max_growth)·Δt / interval),
/// with Δt the steps since the last measurement, clamped to [λ₀·1e-3, ceiling]. Behind the plan
/// (r above it), λ grows, by at most max_growth per interval; ahead of it, λ shrinks; the step is
/// relative to the distance still to go, so the same gain works for any target. The growth
/// limit is against wind-up: units die long after the pressure rises, and meanwhile the error
/// does not shrink, so an unlimited λ climbs until a mass death. The ceiling (max_lambda·λ₀,
/// lowered by cap()) bounds what the growth limit lets through over a long way behind the plan.
/// Once a prune event measures
/// r <= target, λ and σ stay at their floors (0) for the rest of the run: no more units die, and
/// cuts stop at the target.
class BudgetController {
 public:
  /// `lambda0`: the starting λ (DemonOptions::lambda_peak, or lambda_relative in the units of
  /// the measured gradient scale; see GradientScale).
  /// `max_growth` (>= 1) per `interval` steps limits λ's growth; interval 0: no limit.
  /// `max_lambda` (>= 1): λ's ceiling, a multiple of lambda0.
  BudgetController(double target, int64_t by_step, double lambda0, double gain,
                   double max_growth = 2.0, int64_t interval = 0, double max_lambda = 1e3);

  /// r*(step).
  double planned(int64_t step) const;
  /// Feeds the cost ratio measured at a prune event at `step`; returns the λ to use from now on.
  double update(int64_t step, double ratio);
  /// Feeds a projection between events (the cost if the units dead so far were cut). It steers
  /// λ like update() but never declares the target reached: a projection at or under the target
  /// holds λ where it is, so that the units it counted stay dead until the next event cuts them
  /// (zeroing λ on a projection let them revive: a run aimed at 0.3 ended at 0.317).
  double project(int64_t step, double ratio);

  double lambda() const noexcept { return reached() ? 0.0 : lambda_; }
  /// Lowers λ's ceiling to `ceiling` (never below lambda0·1e-3; a higher value changes nothing),
  /// and λ with it: DemonPruner's answer to a training loss that rises under the pressure.
  void cap(double ceiling);
  double ceiling() const noexcept { return ceiling_; }
  double target() const noexcept { return target_; }
  /// The step by which the plan reaches the target.
  int64_t by_step() const noexcept { return by_step_; }
  bool reached() const noexcept { return reached_at_ >= 0; }
  /// The step at which the target was first met, or -1.
  int64_t reached_at() const noexcept { return reached_at_; }
  /// The last ratio fed to update().
  double last_ratio() const noexcept { return last_ratio_; }

  /// Everything needed to resume exactly, as JSON.
  nlohmann::json to_json() const;
  /// Restores what to_json() wrote. Throws demon::ValueError, changing nothing, for damaged
  /// state.
  void load_json(const nlohmann::json& state);
  /// The former names of to_json() and load_json().
  [[deprecated("use to_json()")]] nlohmann::json state() const { return to_json(); }
  [[deprecated("use load_json()")]] void set_state(const nlohmann::json& state) {
    load_json(state);
  }

 private:
  double target_;
  int64_t by_step_;
  double lambda0_;
  double gain_;
  double max_growth_;
  int64_t interval_;
  double ceiling_;
  double lambda_;
  int64_t last_step_ = 0;  // of the last measurement, for the growth limit
  double last_ratio_ = 1.0;
  int64_t reached_at_ = -1;
};

}  // namespace demon
