#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <string>

namespace demon {

/// The shape of a per-step hyper-parameter schedule (used for λ and σ).
enum class ScheduleKind {
  /// optax's `cosine_onecycle_schedule`: peak/div → peak (cosine) at pct_start·span →
  /// peak/(div·final_div) (cosine) at span, constant afterwards. DemP's default.
  kOneCycle,
  /// `peak` at every step.
  kConstant,
  /// optax's `cosine_decay_schedule`: peak → 0 by cosine over the span, 0 afterwards.
  kCosineDecay,
  /// Linear from 0 to `peak` over the span, `peak` afterwards.
  kLinearWarmup,
  /// `peak` until the span ends, 0 afterwards (sparsity training, then fine-tuning: the
  /// Network Slimming baseline).
  kHold,
};

/// "one_cycle", "constant", "cosine_decay", "linear_warmup", "hold".
std::string to_string(ScheduleKind kind);
/// Inverse of to_string(); throws demon::ValueError listing the valid names.
ScheduleKind schedule_kind_from_string(const std::string& name);

/// Options of a Schedule. Example:
/// ```
/// demon::Schedule lambda(demon::ScheduleOptions(demon::ScheduleKind::kOneCycle, 0.2, 8500));
/// double l = lambda(100);
/// ```
struct ScheduleOptions {
  /// One-cycle from 0 to 1 over one step: set what the schedule needs with the setters.
  ScheduleOptions() = default;
  explicit ScheduleOptions(ScheduleKind kind, double peak = 1.0, int64_t span = 1)
      : kind_(kind), peak_(peak), span_(span) {}

  TORCH_ARG(ScheduleKind, kind) = ScheduleKind::kOneCycle;
  /// The largest value the schedule takes.
  TORCH_ARG(double, peak) = 1.0;
  /// Number of steps over which the shape plays out; constant afterwards. Ignored by kConstant.
  TORCH_ARG(int64_t, span) = 1;
  /// kOneCycle: fraction of the span spent rising (the peak is at int(pct_start·span)).
  TORCH_ARG(double, pct_start) = 0.3;
  /// kOneCycle: the start value is peak / div_factor.
  TORCH_ARG(double, div_factor) = 25.0;
  /// kOneCycle: the end value is peak / (div_factor · final_div_factor).
  TORCH_ARG(double, final_div_factor) = 1e4;
};

/// A pure function of the step: value(step) follows the closed form of its kind exactly
/// (double precision). Steps before 0 take the value at step 0.
class Schedule {
 public:
  /// Throws demon::ValueError naming the offending option.
  explicit Schedule(ScheduleOptions options);

  double operator()(int64_t step) const { return value(step); }
  double value(int64_t step) const;
  const ScheduleOptions& options() const noexcept { return options_; }

 private:
  ScheduleOptions options_;
};

}  // namespace demon
