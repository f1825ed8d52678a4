#include <algorithm>
#include <map>
#include <stdexcept>
#include <utility>

#include "demon/errors.h"
#include "demon/graph.h"
#include "graph/builder.h"

namespace demon {

DependencyGraph DependencyGraph::discover(torch::nn::Module& model, const torch::Tensor& root,
                                          const DiscoveryOptions& options) {
  return detail::build_graph(model, root, options);
}

int DependencyGraph::find_tensor(const std::string& name) const {
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (tensors_[i].name == name)
      return static_cast<int>(i);
  }
  return -1;
}

void DependencyGraph::pin(int64_t unit, const std::string& reason) {
  if (unit < 0 || unit >= static_cast<int64_t>(units_.size())) {
    throw ValueError("demon::DependencyGraph::pin: no unit " + std::to_string(unit));
  }
  GraphUnit& target = units_[unit];
  if (!target.pinned) {
    target.pinned = true;
    target.pin_reason = reason;
  }
}

bool DependencyGraph::prunable(int64_t unit) const {
  const GraphUnit& u = units_.at(unit);
  return !u.removed && !u.pinned && u.observable && !u.read_sites.empty();
}

int64_t DependencyGraph::live_units() const {
  int64_t live = 0;
  for (const auto& group : groups_)
    live += static_cast<int64_t>(group.units.size());
  return live;
}

int64_t DependencyGraph::flops() const {
  int64_t total = 0;
  for (const auto& layer : layers_) {
    if ((layer.kind == LayerKind::kConv || layer.kind == LayerKind::kLinear) && layer.weight >= 0) {
      total += 2 * tensors_[layer.weight].tensor.numel() * layer.outputs_per_sample;
    }
  }
  return total;
}

namespace {

// The shape of every tensor of `graph` after removing `units`.
std::vector<std::vector<int64_t>> shapes_without(const DependencyGraph& graph,
                                                 const std::vector<int64_t>& units) {
  std::vector<bool> removing(graph.units().size(), false);
  for (int64_t u : units)
    removing.at(u) = true;
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& t : graph.tensors())
    shapes.push_back(t.tensor.sizes().vec());
  for (const auto& axis : graph.axes()) {
    if (axis.tensor < 0)
      continue;
    for (int64_t owner : axis.owner)
      shapes[axis.tensor][axis.dim] -= owner >= 0 && removing[owner];
  }
  return shapes;
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t size : shape)
    n *= size;
  return n;
}

}  // namespace

int64_t DependencyGraph::flops_without(const std::vector<int64_t>& units) const {
  const auto shapes = shapes_without(*this, units);
  int64_t total = 0;
  for (const auto& layer : layers_) {
    if ((layer.kind == LayerKind::kConv || layer.kind == LayerKind::kLinear) && layer.weight >= 0) {
      total += 2 * numel_of(shapes[layer.weight]) * layer.outputs_per_sample;
    }
  }
  return total;
}

int64_t DependencyGraph::parameters_without(const std::vector<int64_t>& units) const {
  const auto shapes = shapes_without(*this, units);
  int64_t total = 0;
  for (size_t t = 0; t < tensors_.size(); ++t) {
    if (tensors_[t].is_parameter)
      total += numel_of(shapes[t]);
  }
  return total;
}

std::vector<int64_t> DependencyGraph::unit_flops() const {
  // Per tensor, the conv / linear layer whose weight it is (what flops() counts), or -1.
  std::vector<int> flops_layer(tensors_.size(), -1);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const auto& layer = layers_[l];
    if ((layer.kind == LayerKind::kConv || layer.kind == LayerKind::kLinear) && layer.weight >= 0)
      flops_layer[layer.weight] = static_cast<int>(l);
  }
  // Per (unit, weight tensor), how many indices the unit owns along each dim: a unit may own
  // indices on two dims of one weight (depthwise convolutions), which do not simply add up.
  std::map<std::pair<int64_t, int>, std::vector<int64_t>> owned;
  for (const auto& axis : axes_) {
    if (axis.tensor < 0 || flops_layer[axis.tensor] < 0)
      continue;
    for (int64_t owner : axis.owner) {
      if (owner < 0)
        continue;
      auto& counts = owned[{owner, axis.tensor}];
      counts.resize(static_cast<size_t>(tensors_[axis.tensor].tensor.dim()), 0);
      ++counts[axis.dim];
    }
  }
  std::vector<int64_t> saving(units_.size(), 0);
  for (const auto& [key, counts] : owned) {
    const auto& [unit, tensor] = key;
    const auto shape = tensors_[tensor].tensor.sizes();
    int64_t before = 1, after = 1;
    for (size_t d = 0; d < counts.size(); ++d) {
      before *= shape[d];
      after *= shape[d] - counts[d];
    }
    saving[unit] += 2 * (before - after) * layers_[flops_layer[tensor]].outputs_per_sample;
  }
  return saving;
}

std::vector<int64_t> DependencyGraph::unit_activations() const {
  std::vector<int64_t> elements(units_.size(), 0);
  for (const auto& site : sites_) {
    for (int64_t owner : site.owner) {
      if (owner >= 0)
        elements[owner] += site.positions;
    }
  }
  return elements;
}

std::vector<std::vector<int64_t>> DependencyGraph::remove_units(const std::vector<int64_t>& units) {
  std::vector<bool> removing(units_.size(), false);
  for (int64_t u : units) {
    removing.at(u) = true;
    units_[u].removed = true;
  }
  auto compact = [&](std::vector<int64_t>& owner) {
    std::vector<int64_t> keep;
    std::vector<int64_t> kept_owner;
    for (size_t i = 0; i < owner.size(); ++i) {
      if (owner[i] < 0 || !removing[owner[i]]) {
        keep.push_back(static_cast<int64_t>(i));
        kept_owner.push_back(owner[i]);
      }
    }
    owner = std::move(kept_owner);
    return keep;
  };
  std::vector<std::vector<int64_t>> keeps;
  for (auto& axis : axes_)
    keeps.push_back(compact(axis.owner));
  for (auto& site : sites_)
    compact(site.owner);
  for (auto& group : groups_) {
    group.units.erase(std::remove_if(group.units.begin(), group.units.end(),
                                     [&](int64_t u) { return removing[u]; }),
                      group.units.end());
  }
  return keeps;
}

}  // namespace demon
