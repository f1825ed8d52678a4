#include "demon/activity.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "demon/criterion.h"
#include "demon/errors.h"
#include "detail/autograd_nodes.h"
#include "detail/channel_reduction.h"

namespace demon {

ActivityTracker::ActivityTracker(double epsilon) : epsilon_(epsilon) {
  if (!(epsilon >= 0.0)) {
    throw ValueError("demon::ActivityTracker: epsilon must be >= 0, got " +
                     std::to_string(epsilon));
  }
}

bool ActivityTracker::observe(const DependencyGraph& graph, const torch::Tensor& root,
                              bool same_structure) {
  if (!root.defined() || !root.grad_fn()) {
    return false;
  }
  auto all_nodes = detail::nodes_in_forward_order(root.grad_fn());
  if (same_structure && (all_nodes.size() != graph.node_count() ||
                         detail::structure_fingerprint(all_nodes) != graph.fingerprint())) {
    return false;
  }
  // The activation nodes in canonical order: the same order the graph's sites were found in.
  std::vector<std::pair<detail::NodePtr, ActivationKind>> nodes;
  for (auto& node : all_nodes) {
    if (auto kind = detail::activation_kind(*node)) {
      nodes.emplace_back(std::move(node), *kind);
    }
  }
  const auto& sites = graph.sites();
  if (nodes.size() != sites.size()) {
    return false;
  }
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> peaks(sites.size());
  for (size_t s = 0; s < sites.size(); ++s) {
    const auto& site = sites[s];
    if (nodes[s].second != site.kind) {
      return false;
    }
    const torch::Tensor out = detail::activation_output(nodes[s].first, site.kind);
    const auto positions = static_cast<int64_t>(site.owner.size());
    if (!out.defined()) {
      // Unreadable (modified in place since): counts as active everywhere.
      peaks[s] = torch::full({positions}, std::numeric_limits<float>::infinity(),
                             torch::TensorOptions(root.device()).dtype(torch::kFloat));
      continue;
    }
    if (site.dim >= out.dim() || out.size(site.dim) != positions) {
      return false;
    }
    // One reduction per activation (two where the output can be negative).
    const bool non_negative =
        site.kind == ActivationKind::kRelu || site.kind == ActivationKind::kSigmoid;
    torch::Tensor peak = detail::reduce_to_channels(out, site.dim, /*largest=*/true);
    if (!non_negative) {
      peak =
          torch::maximum(peak, detail::reduce_to_channels(out, site.dim, /*largest=*/false).neg());
    }
    peaks[s] = peak.to(torch::kFloat);
  }
  if (peaks_.size() != sites.size()) {
    peaks_.assign(sites.size(), torch::Tensor());
  }
  for (size_t s = 0; s < sites.size(); ++s) {
    if (peaks_[s].defined() && peaks_[s].sizes() == peaks[s].sizes()) {
      if (peaks_[s].device() != peaks[s].device())
        peaks_[s] = peaks_[s].to(peaks[s].device());  // the model moved: its record follows
      // fmax: a NaN peak (a step whose forward went NaN) is no evidence either way; the record
      // keeps what the finite steps showed, and a position that only ever saw NaN stays NaN,
      // which unit_peaks() reads as "no evidence, never dead".
      at::fmax_out(peaks_[s], peaks_[s], peaks[s]);
    } else {
      peaks_[s] = peaks[s];
    }
  }
  ++observations_;
  return true;
}

std::vector<double> ActivityTracker::unit_peaks(const DependencyGraph& graph) const {
  constexpr double kNoEvidence = std::numeric_limits<double>::infinity();
  std::vector<double> peak(graph.units().size(), kNoEvidence);
  if (observations_ == 0 || peaks_.size() != graph.sites().size()) {
    return peak;
  }
  // The peak per (site, unit), from the host copy of each site's record; NaN: no position there.
  std::vector<std::vector<double>> site_unit(peaks_.size());
  for (size_t s = 0; s < peaks_.size(); ++s) {
    if (!peaks_[s].defined())
      continue;
    auto& of_unit = site_unit[s];
    of_unit.assign(graph.units().size(), std::numeric_limits<double>::quiet_NaN());
    const auto values = peaks_[s].to(torch::kCPU).to(torch::kDouble).contiguous();
    const double* data = values.data_ptr<double>();
    const auto& owner = graph.sites()[s].owner;
    for (size_t p = 0; p < owner.size(); ++p) {
      const int64_t u = owner[p];
      if (u < 0)
        continue;
      of_unit[u] = std::isnan(of_unit[u]) ? data[p] : std::max(of_unit[u], data[p]);
    }
  }
  for (size_t u = 0; u < graph.units().size(); ++u) {
    const auto& read_sites = graph.units()[u].read_sites;
    if (read_sites.empty())
      continue;
    double value = 0.0;
    for (int s : read_sites) {
      // Never observed, or this unit has no position there: no evidence, never dead.
      if (site_unit[s].empty() || std::isnan(site_unit[s][u])) {
        value = kNoEvidence;
        break;
      }
      value = std::max(value, site_unit[s][u]);
    }
    peak[u] = value;
  }
  return peak;
}

std::vector<int64_t> ActivityTracker::dead_units(const DependencyGraph& graph) const {
  UnitEvidence evidence;
  evidence.graph = &graph;
  evidence.peak = unit_peaks(graph);
  return DeadUnits(epsilon_).select(evidence);  // the one definition of "dead"
}

void ActivityTracker::reset() {
  peaks_.clear();
  observations_ = 0;
}

void ActivityTracker::set_peaks(std::vector<torch::Tensor> peaks, int64_t observations) {
  peaks_ = std::move(peaks);
  observations_ = observations;
}

}  // namespace demon
