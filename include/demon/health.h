#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace demon {

/// One time the health guard backed λ off.
struct HealthEvent {
  /// The step of the check that saw the loss risen.
  int64_t step = 0;
  /// The running loss's lowest level before it rose, and its level at that check.
  double baseline_loss = 0.0;
  double loss = 0.0;
  /// The first loss (chance level, for a classifier trained from scratch).
  double first_loss = 0.0;
  /// The share of λ that applies again once the loss has recovered.
  double lambda_scale = 1.0;
  /// The step of the check that saw the loss back near its baseline, or -1.
  int64_t recovered_at = -1;

  /// "step 1200: running loss 1.31 -> 1.74, 43% of the way back to the first loss 2.31; λ held
  /// at 0 until it recovers, then x0.5".
  std::string describe() const;
  nlohmann::json to_json() const;
  static HealthEvent from_json(const nlohmann::json& json);
};

/// Watches the training loss for damage done by the pressure, and backs λ off when it sees it.
///
/// A running average of the loss (an exponential one over `window` steps) is kept on the loss's
/// device, so that observing a step costs a few small kernels and no host synchronization; it is
/// read only at checks, which DemonPruner makes where it reads other state anyway (the budget
/// controller's cadence). Two levels frame it: the first loss, which for a freshly initialized
/// classifier is chance level, and the running average's lowest level so far, the baseline. What
/// lies between them is what the model has learned. A healthy run's loss falls or holds; a
/// pressure that crushes units the model needs undoes that learning and drives the loss back
/// towards chance. When the running loss has climbed back more than `rise` of the way from the
/// baseline to the first loss, the guard trips: λ is held at 0 until it is back within rise/2,
/// and from then on only `backoff` times the λ it had before applies (each trip multiplies
/// again). Units already dead stay dead and are still cut; the rest of the network can recover.
///
/// Measured against what was learned rather than against the loss itself, the rise means the
/// same on a task learned to a loss of 0.05 and on one that stalls at 1.8, where a relative rise
/// of the loss would cry wolf on the first and see the second reach chance late. The first check
/// counts only after `window` observations, when the average has settled.
class HealthGuard {
 public:
  /// Throws demon::ValueError unless rise > 0 (finite), window >= 1 and 0 <= backoff < 1.
  HealthGuard(double rise, int64_t window, double backoff);

  /// Adds one step's loss (a scalar, or its mean) to the running average, on its device, without
  /// a host sync. Non-finite losses are ignored.
  void observe(const torch::Tensor& loss);

  /// Reads the running average and the first loss (one host sync) and returns how far the average
  /// stands above the baseline, as a fraction of the first loss's height above it (0.25: a
  /// quarter of what was learned is undone); 0 before the average has settled or while nothing
  /// is learned. Changes nothing; data-parallel training takes the largest over the ranks and
  /// passes it to update().
  double measure();
  /// Acts on `rise` (from measure(), or the ranks' largest) at `step`: trips, recovers, or moves
  /// the baseline down. Returns the event when it tripped now, else nullptr.
  const HealthEvent* update(int64_t step, double rise);

  /// The factor on λ: 0 while tripped, else the product of the backoffs of past trips (1 before).
  double lambda_factor() const noexcept { return tripped_ ? 0.0 : scale_; }
  bool tripped() const noexcept { return tripped_; }
  const std::vector<HealthEvent>& events() const noexcept { return events_; }
  /// The running loss at the last measure() (NaN before), the baseline it is compared with, and
  /// the first loss (NaN before they are read).
  double running_loss() const noexcept { return last_; }
  double baseline() const noexcept { return baseline_; }
  double first_loss() const noexcept { return first_level_; }

  /// Everything needed to resume exactly, as JSON; the running average's value included.
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
  double rise_;
  int64_t window_;
  double backoff_;
  torch::Tensor average_;  // float32 on the loss's device; undefined before the first loss
  torch::Tensor first_;    // the first finite loss, beside it (NaN until there is one)
  int64_t observations_ = 0;
  double last_;
  double baseline_;
  double first_level_;
  double scale_ = 1.0;
  bool tripped_ = false;
  std::vector<HealthEvent> events_;
};

}  // namespace demon
