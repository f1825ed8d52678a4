#pragma once

#include <memory>
#include <string>
#include <vector>

#include "demon/graph.h"

namespace demon {

/// What a death criterion sees at a prune event, per unit id of the graph.
struct UnitEvidence {
  const DependencyGraph* graph = nullptr;
  /// The largest |activation| of the unit's read sites since the last prune event, on the data the
  /// death check names (training batches, check batches, or the larger of both); +infinity where
  /// there is no evidence (such a unit is never dead).
  std::vector<double> peak;
  /// The largest |scale| (γ) of the unit's normalization layers; NaN where it has none.
  std::vector<double> scale;
};

/// Decides which units a prune event removes. DemonPruner gives it the evidence and cuts what it
/// returns (within the width floors); user criteria derive from it and are installed with
/// DemonPruner::set_criterion().
class DeathCriterion {
 public:
  virtual ~DeathCriterion() = default;
  /// Short name for reports, e.g. "dead".
  virtual std::string name() const = 0;
  /// True when removing what select() returns leaves the model's outputs unchanged on the data
  /// the evidence came from. DemonPruner measures and reports the output change of inexact ones.
  virtual bool exact() const = 0;
  /// The units to remove, among the graph's prunable ones.
  virtual std::vector<int64_t> select(const UnitEvidence& evidence) const = 0;
};

/// The paper's rule, the default: units whose activations never exceeded `epsilon` (0: exactly
/// zero). Exact.
class DeadUnits : public DeathCriterion {
 public:
  explicit DeadUnits(double epsilon = 0.0);
  std::string name() const override { return "dead"; }
  bool exact() const override { return true; }
  std::vector<int64_t> select(const UnitEvidence& evidence) const override;

 private:
  double epsilon_;
};

/// Quasi-dead units: a peak of at most `ratio` times the mean peak of the group's prunable units.
/// Removing them changes the outputs a little (reported at each event).
class QuasiDeadUnits : public DeathCriterion {
 public:
  explicit QuasiDeadUnits(double ratio);
  std::string name() const override { return "quasi_dead"; }
  bool exact() const override { return false; }
  std::vector<int64_t> select(const UnitEvidence& evidence) const override;

 private:
  double ratio_;
};

/// Network Slimming (Liu et al., 2017): units whose normalization scale |γ| is at most
/// `threshold`, and the `fraction` of all prunable units with a scale that have the smallest
/// |γ| (one ranking over the whole model). Not exact: the units may be alive.
class SmallScales : public DeathCriterion {
 public:
  SmallScales(double threshold, double fraction);
  std::string name() const override { return "small_scale"; }
  bool exact() const override { return false; }
  std::vector<int64_t> select(const UnitEvidence& evidence) const override;

 private:
  double threshold_;
  double fraction_;
};

/// Per unit id, the largest |γ| of the normalization layers among its tensors (the scale entries
/// it owns of BatchNorm, InstanceNorm, GroupNorm, LayerNorm: what the regularizer pushes); NaN
/// where it has none.
std::vector<double> unit_scales(const DependencyGraph& graph);

}  // namespace demon
