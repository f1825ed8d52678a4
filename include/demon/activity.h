#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "demon/graph.h"

namespace demon {

/// Per-unit "was active" statistics, read from the autograd graph.
///
/// observe() reads the output of every activation site of a DependencyGraph from an autograd
/// graph (after forward, before backward frees the saved tensors), reduces it to one value per
/// channel position — its peak, the largest |output| anywhere in the batch — and keeps the
/// running maximum over passes on the activation's device: one reduction per activation, no host
/// synchronization. dead_units() and unit_peaks() then read the peaks on the host.
///
/// "Dead" means: every activation whose output reaches a linear consumer of the unit was
/// |output| <= epsilon at every position, for every sample of every observed pass. With
/// epsilon = 0 (the default) that is exactly zero, so removing the unit changes nothing on those
/// passes. For ReLU this is the usual dead neuron; for GELU, SiLU, Tanh, LeakyReLU it needs an
/// exactly-zero output (rare) or an epsilon > 0, which makes the cut approximate (the removed
/// contributions are at most epsilon per input of the next layer); Sigmoid never outputs 0.
///
/// A pass whose output at a position is NaN (a diverged forward) is no evidence for that
/// position: it neither keeps a unit alive nor counts towards its death.
class ActivityTracker {
 public:
  explicit ActivityTracker(double epsilon = 0.0);

  /// Records one pass. The graph's activation sites are matched, in canonical order, to the
  /// activation nodes reachable from `root` (a loss or model output with its autograd graph
  /// still alive); returns false, recording nothing, if they do not match: another structure,
  /// rediscover the graph. With `same_structure`, every node must match the discovered graph
  /// (training passes); without, only the activations (an eval-mode pass has no dropout nodes).
  /// An activation whose output cannot be read (modified in place afterwards) counts as active.
  bool observe(const DependencyGraph& graph, const torch::Tensor& root, bool same_structure = true);

  /// Prunable units whose read sites all peaked at |output| <= epsilon on the unit's positions,
  /// over every pass observed since the last reset(). Nothing is dead before the first
  /// observation.
  std::vector<int64_t> dead_units(const DependencyGraph& graph) const;

  /// Per unit id: its peak |output| over its read sites and positions since the last reset();
  /// +infinity where there is no evidence (no observation, no read site, or a site without the
  /// unit's positions). What death criteria decide on.
  std::vector<double> unit_peaks(const DependencyGraph& graph) const;

  /// Forgets everything (after a prune event: the sites have new sizes).
  void reset();

  double epsilon() const noexcept { return epsilon_; }
  int64_t observations() const noexcept { return observations_; }
  /// Per site (graph order): the peak |output| per position, float [positions], undefined
  /// until observed. An output that could not be read counts as +infinity (active).
  const std::vector<torch::Tensor>& peaks() const noexcept { return peaks_; }
  /// Restores peaks saved from peaks() (checkpoints).
  void set_peaks(std::vector<torch::Tensor> peaks, int64_t observations);

 private:
  double epsilon_;
  int64_t observations_ = 0;
  std::vector<torch::Tensor> peaks_;
};

}  // namespace demon
