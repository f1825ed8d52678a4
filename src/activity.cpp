#include "demon/activity.h"

#include <stdexcept>

#include "detail/autograd_nodes.h"

namespace demon {

ActivityTracker::ActivityTracker(double epsilon) : epsilon_(epsilon) {
  if (!(epsilon >= 0.0)) {
    throw std::invalid_argument("demon::ActivityTracker: epsilon must be >= 0, got " +
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
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, ActivationKind>> nodes;
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
  std::vector<torch::Tensor> active(sites.size());
  for (size_t s = 0; s < sites.size(); ++s) {
    const auto& site = sites[s];
    if (nodes[s].second != site.kind) {
      return false;
    }
    const torch::Tensor out = detail::activation_output(nodes[s].first, site.kind);
    const auto positions = static_cast<int64_t>(site.owner.size());
    if (!out.defined()) {
      active[s] = torch::ones({positions}, torch::TensorOptions(root.device()).dtype(torch::kBool));
      continue;
    }
    if (site.dim >= out.dim() || out.size(site.dim) != positions) {
      return false;
    }
    std::vector<int64_t> dims;
    for (int64_t d = 0; d < out.dim(); ++d) {
      if (d != site.dim)
        dims.push_back(d);
    }
    // One reduction per activation (two where the output can be negative).
    if (site.kind == ActivationKind::kRelu || site.kind == ActivationKind::kSigmoid) {
      active[s] = dims.empty() ? out.gt(epsilon_) : out.amax(dims).gt(epsilon_);
    } else {
      active[s] = dims.empty()
                      ? out.abs().gt(epsilon_)
                      : out.amax(dims).gt(epsilon_).logical_or_(out.amin(dims).lt(-epsilon_));
    }
  }
  if (records_.size() != sites.size()) {
    records_.assign(sites.size(), torch::Tensor());
  }
  for (size_t s = 0; s < sites.size(); ++s) {
    if (records_[s].defined() && records_[s].sizes() == active[s].sizes()) {
      records_[s].logical_or_(active[s]);
    } else {
      records_[s] = active[s];
    }
  }
  ++observations_;
  return true;
}

std::vector<int64_t> ActivityTracker::dead_units(const DependencyGraph& graph) const {
  std::vector<int64_t> dead;
  if (observations_ == 0 || records_.size() != graph.sites().size()) {
    return dead;
  }
  // Active per (site, unit), from the host copy of each record.
  std::vector<std::vector<int8_t>> site_unit(records_.size());
  for (size_t s = 0; s < records_.size(); ++s) {
    if (!records_[s].defined())
      continue;
    auto& flags_of_unit = site_unit[s];
    flags_of_unit.assign(graph.units().size(), -1);
    const auto flags = records_[s].to(torch::kCPU).contiguous();
    const bool* data = flags.data_ptr<bool>();
    const auto& owner = graph.sites()[s].owner;
    for (size_t p = 0; p < owner.size(); ++p) {
      const int64_t u = owner[p];
      if (u < 0)
        continue;
      if (flags_of_unit[u] < 0)
        flags_of_unit[u] = 0;
      if (data[p])
        flags_of_unit[u] = 1;
    }
  }
  for (const auto& group : graph.groups()) {
    for (int64_t u : group.units) {
      if (!graph.prunable(u))
        continue;
      bool is_dead = true;
      for (int s : graph.units()[u].read_sites) {
        // Never observed, or this unit has no position there: no evidence, not dead.
        if (site_unit[s].empty() || site_unit[s][u] != 0) {
          is_dead = false;
          break;
        }
      }
      if (is_dead)
        dead.push_back(u);
    }
  }
  return dead;
}

void ActivityTracker::reset() {
  records_.clear();
  observations_ = 0;
}

void ActivityTracker::set_records(std::vector<torch::Tensor> records, int64_t observations) {
  records_ = std::move(records);
  observations_ = observations;
}

}  // namespace demon
