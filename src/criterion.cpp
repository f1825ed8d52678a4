#include "demon/criterion.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include "demon/errors.h"
#include "layers/layer_spec.h"

namespace demon {
namespace {

void require_evidence(const UnitEvidence& evidence, bool scales) {
  if (evidence.graph == nullptr || evidence.peak.size() != evidence.graph->units().size() ||
      (scales && evidence.scale.size() != evidence.graph->units().size())) {
    throw ValueError("demon::DeathCriterion: evidence does not cover the graph's units");
  }
}

}  // namespace

DeadUnits::DeadUnits(double epsilon) : epsilon_(epsilon) {
  if (!(epsilon >= 0.0)) {
    throw ValueError("demon::DeadUnits: epsilon must be >= 0, got " + std::to_string(epsilon));
  }
}

std::vector<int64_t> DeadUnits::select(const UnitEvidence& evidence) const {
  require_evidence(evidence, false);
  std::vector<int64_t> units;
  for (const auto& group : evidence.graph->groups()) {
    for (int64_t u : group.units) {
      if (evidence.graph->prunable(u) && evidence.peak[u] <= epsilon_)
        units.push_back(u);
    }
  }
  return units;
}

QuasiDeadUnits::QuasiDeadUnits(double ratio) : ratio_(ratio) {
  if (!(ratio >= 0.0 && ratio < 1.0)) {
    throw ValueError("demon::QuasiDeadUnits: ratio must be in [0, 1), got " +
                     std::to_string(ratio));
  }
}

std::vector<int64_t> QuasiDeadUnits::select(const UnitEvidence& evidence) const {
  require_evidence(evidence, false);
  std::vector<int64_t> units;
  for (const auto& group : evidence.graph->groups()) {
    double sum = 0.0;
    int64_t count = 0;
    for (int64_t u : group.units) {
      if (evidence.graph->prunable(u) && std::isfinite(evidence.peak[u])) {
        sum += evidence.peak[u];
        ++count;
      }
    }
    if (count == 0)
      continue;
    const double bar = ratio_ * sum / static_cast<double>(count);
    for (int64_t u : group.units) {
      if (evidence.graph->prunable(u) && evidence.peak[u] <= bar)
        units.push_back(u);
    }
  }
  return units;
}

SmallScales::SmallScales(double threshold, double fraction)
    : threshold_(threshold), fraction_(fraction) {
  if (!(threshold >= 0.0) || !(fraction >= 0.0 && fraction < 1.0)) {
    throw ValueError("demon::SmallScales: threshold must be >= 0 and fraction in [0, 1), got " +
                     std::to_string(threshold) + " and " + std::to_string(fraction));
  }
}

std::vector<int64_t> SmallScales::select(const UnitEvidence& evidence) const {
  require_evidence(evidence, true);
  std::vector<std::pair<double, int64_t>> ranked;
  for (const auto& group : evidence.graph->groups()) {
    for (int64_t u : group.units) {
      if (evidence.graph->prunable(u) && !std::isnan(evidence.scale[u]))
        ranked.emplace_back(evidence.scale[u], u);
    }
  }
  std::sort(ranked.begin(), ranked.end());
  const auto by_fraction =
      static_cast<size_t>(std::floor(fraction_ * static_cast<double>(ranked.size())));
  std::vector<int64_t> units;
  for (size_t i = 0; i < ranked.size(); ++i) {
    if (i < by_fraction || ranked[i].first <= threshold_)
      units.push_back(ranked[i].second);
  }
  std::sort(units.begin(), units.end());
  return units;
}

std::vector<double> unit_scales(const DependencyGraph& graph) {
  std::vector<double> scale(graph.units().size(), std::numeric_limits<double>::quiet_NaN());
  torch::NoGradGuard no_grad;
  for (const auto& axis : graph.axes()) {
    if (axis.tensor < 0 || axis.dim != 0)
      continue;
    const auto& tensor = graph.tensors()[axis.tensor];
    if (tensor.layer < 0 || !tensor.is_parameter)
      continue;
    const auto scale_tensor = detail::norm_scale_of(*graph.layers()[tensor.layer].module);
    if (!scale_tensor.defined() || !scale_tensor.is_same(tensor.tensor))
      continue;
    const auto values = tensor.tensor.detach().abs().to(torch::kCPU, torch::kDouble).contiguous();
    const double* data = values.data_ptr<double>();
    for (size_t i = 0; i < axis.owner.size(); ++i) {
      const int64_t u = axis.owner[i];
      if (u < 0)
        continue;
      scale[u] = std::isnan(scale[u]) ? data[i] : std::max(scale[u], data[i]);
    }
  }
  return scale;
}

}  // namespace demon
