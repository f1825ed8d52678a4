#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

namespace demon {

struct NormScale;

/// What the loss pushes back with on the normalization scales: the mean |∂L/∂γ| over every
/// scale entry, averaged over the steps it has seen. An automatic λ is a multiple of it
/// (DemonOptions::lambda_relative).
///
/// Why this unit: under the Lasso term a scale drifts to zero when λ outweighs the loss
/// gradient's steady pull on it, and away from zero when the pull wins, whatever the optimizer
/// (SGD's step is lr·(g + λ·sign γ); Adam's has the same sign and a normalized size). So the
/// units that die are those whose pull falls below λ, and λ is meaningful only relative to how
/// large those gradients are. That size changes by orders of magnitude with the model's width
/// and depth, the loss and the data, while a fixed λ calibrated on one model crushes another or
/// leaves it untouched. The measurement stops at `until_step` (the schedule's rise, when λ is
/// still weak; under a budget the first prune interval, if shorter, since the controller moves λ
/// from the start) and is frozen from then on: tracking it for the whole run would raise λ
/// exactly when the pressure harms the model (a damaged model's gradients grow) and remove the
/// brake a fixed λ has.
///
/// Observing a step costs a few small kernels on the scales' device and no host sync; the host
/// reads the average only at refresh(), which DemonPruner calls where it synchronizes anyway.
class GradientScale {
 public:
  /// Measures steps 0 .. until_step - 1 (at least step 0).
  explicit GradientScale(int64_t until_step);

  /// Whether the step `step` is still measured.
  bool measuring(int64_t step) const noexcept { return step < until_; }
  /// Adds the mean |gradient| of `scales` (the loss gradient, before any regularizer wrote to it)
  /// to the running sum. Scales without a gradient are left out; a step where none has one adds
  /// nothing. The first observation is read at once (one host sync, once), so that λ has a
  /// unit from the first step.
  void observe(const std::vector<NormScale>& scales);
  /// Reads the running average to the host (one sync); value() returns it from now on.
  void refresh();
  /// The average mean |∂L/∂γ| per step at the last refresh(); 0 before any observation.
  double value() const noexcept { return value_; }
  int64_t observations() const noexcept { return observations_; }
  int64_t until_step() const noexcept { return until_; }

  /// Everything needed to resume exactly, as JSON (reads the running sum: one sync).
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
  int64_t until_;
  torch::Tensor sum_;  // float64 on the scales' device; undefined before the first observation
  int64_t observations_ = 0;
  double value_ = 0.0;
};

}  // namespace demon
