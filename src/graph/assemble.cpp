#include "graph/assemble.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <unordered_map>

#include "demon/errors.h"
#include "layers/layer_spec.h"

namespace demon::detail {
namespace {

void apply_user_options(GraphRecord& record, const DiscoveryOptions& options) {
  auto axis_ids = [&](const std::string& name, int64_t dim) -> const std::vector<int64_t>& {
    const int t = record.find_tensor(name);
    if (t < 0) {
      throw ValueError("demon::DiscoveryOptions: no parameter or buffer named \"" + name +
                       "\" in the model");
    }
    const auto found = record.axes.find({t, -1, dim});
    if (found == record.axes.end()) {
      throw ValueError("demon::DiscoveryOptions: axis " + std::to_string(dim) + " of \"" + name +
                       "\" is not a channel axis in the graph");
    }
    return found->second;
  };
  for (const auto& c : options.couplings()) {
    const auto& a = axis_ids(c.tensor_a, c.dim_a);
    const auto& b = axis_ids(c.tensor_b, c.dim_b);
    if (a.size() != b.size()) {
      throw ValueError("demon::DiscoveryOptions::couple: \"" + c.tensor_a + "\" and \"" +
                       c.tensor_b + "\" have different sizes");
    }
    record.ids.unite_all(a, b);
  }
  for (const auto& name : options.pinned_tensors()) {
    const int t = record.find_tensor(name);
    if (t < 0) {
      throw ValueError("demon::DiscoveryOptions::pin: no parameter or buffer named \"" + name +
                       "\" in the model");
    }
    record.pinned_tensors.emplace(t, "pinned by DiscoveryOptions");
  }
  for (const auto& [t, reason] : record.pinned_tensors) {
    for (const auto& [key, ids] : record.axes) {
      if (std::get<0>(key) == t) {
        record.ids.pin_all(ids, reason);
      }
    }
  }
}

// The producing layers of a group: the output dim of convolution / linear weights, selection
// outputs.
std::string group_name(const ChannelGroup& group, const std::vector<GraphAxis>& axes,
                       const std::vector<GraphTensor>& tensors,
                       const std::vector<GraphLayer>& layers) {
  std::vector<std::string> producers;
  for (int a : group.axes) {
    const GraphAxis& axis = axes[a];
    std::string name;
    if (axis.tensor < 0 && axis.dim == 1) {
      name = layers[axis.layer].name;
    } else if (axis.tensor >= 0) {
      const int layer = tensors[axis.tensor].layer;
      if (layer >= 0 && layers[layer].weight == axis.tensor) {
        const LayerSpec* spec = find_layer_spec(*layers[layer].module);
        if (spec != nullptr && axis.dim == spec->weight_out_dim) {
          name = layers[layer].name;
        }
      }
    }
    if (!name.empty() && std::find(producers.begin(), producers.end(), name) == producers.end()) {
      producers.push_back(name);
    }
  }
  if (producers.empty()) {
    const GraphAxis& axis = axes[group.axes.front()];
    return axis.tensor >= 0 ? tensors[axis.tensor].name : layers[axis.layer].name;
  }
  std::string name = producers.front();
  if (producers.size() > 1) {
    name += " (+" + std::to_string(producers.size() - 1) + " coupled)";
  }
  return name;
}

// Channel classes that own at least one axis index become units, numbered in axis order: the
// unit of each class's root.
std::unordered_map<int64_t, int64_t> number_units(GraphRecord& record) {
  std::unordered_map<int64_t, int64_t> unit_of_root;
  for (const auto& key : record.axis_order) {
    for (int64_t raw : record.axes[key]) {
      const int64_t root = record.ids.root(raw);
      if (!unit_of_root.count(root)) {
        const auto unit = static_cast<int64_t>(unit_of_root.size());
        unit_of_root[root] = unit;
      }
    }
  }
  return unit_of_root;
}

// The units, with the facts of every id of their class merged: pinned (with the first reason),
// observable only when every id is, and the activation sites that read them.
std::vector<GraphUnit> merged_units(ChannelIds& ids,
                                    const std::unordered_map<int64_t, int64_t>& unit_of_root) {
  std::vector<GraphUnit> units(unit_of_root.size());
  for (int64_t raw = 0; raw < ids.size(); ++raw) {
    const auto found = unit_of_root.find(ids.root(raw));
    if (found == unit_of_root.end()) {
      continue;
    }
    GraphUnit& unit = units[found->second];
    if (!ids.pin_reason(raw).empty() && !unit.pinned) {
      unit.pinned = true;
      unit.pin_reason = ids.pin_reason(raw);
    }
    unit.observable = unit.observable && !ids.unobservable(raw);
    const auto& reads = ids.read_sites(raw);
    unit.read_sites.insert(unit.read_sites.end(), reads.begin(), reads.end());
  }
  for (auto& unit : units) {
    std::sort(unit.read_sites.begin(), unit.read_sites.end());
    unit.read_sites.erase(std::unique(unit.read_sites.begin(), unit.read_sites.end()),
                          unit.read_sites.end());
  }
  return units;
}

// Groups: units with the same axes (`unit_axes`), in order of first appearance; sets each
// unit's group.
std::vector<ChannelGroup> group_units(const std::vector<GraphAxis>& axes,
                                      std::vector<GraphUnit>& units,
                                      const std::vector<std::vector<int>>& unit_axes) {
  std::vector<ChannelGroup> groups;
  std::map<std::vector<int>, int> group_of_signature;
  for (const auto& axis : axes) {
    for (int64_t u : axis.owner) {
      GraphUnit& unit = units[u];
      if (unit.group >= 0) {
        continue;
      }
      auto [it, inserted] =
          group_of_signature.emplace(unit_axes[u], static_cast<int>(groups.size()));
      if (inserted) {
        ChannelGroup group;
        group.axes = unit_axes[u];
        groups.push_back(std::move(group));
      }
      unit.group = it->second;
      groups[it->second].units.push_back(u);
    }
  }
  return groups;
}

}  // namespace

DependencyGraph assemble_graph(GraphRecord&& record, const DiscoveryOptions& options) {
  return GraphAssembly::assemble(std::move(record), options);
}

}  // namespace demon::detail

namespace demon {

DependencyGraph GraphAssembly::assemble(detail::GraphRecord&& record,
                                        const DiscoveryOptions& options) {
  using namespace detail;
  apply_user_options(record, options);
  DependencyGraph graph;
  graph.tensors_ = std::move(record.tensors);
  graph.layers_ = std::move(record.layers);
  graph.sites_ = std::move(record.sites);
  graph.unknown_ops_ = std::move(record.unknown_ops);
  graph.node_count_ = record.node_count;
  graph.fingerprint_ = record.fingerprint;
  ChannelIds& ids = record.ids;

  const int64_t batch = record.batch_size;
  const auto per_sample = [batch](int64_t rows) {
    return batch > 0 && rows % batch == 0 ? rows / batch : rows;
  };
  for (const auto& [layer, rows] : record.linear_rows)
    graph.layers_[layer].outputs_per_sample = per_sample(rows);
  for (auto& site : graph.sites_)
    site.positions = per_sample(site.positions);
  const std::unordered_map<int64_t, int64_t> unit_of_root = number_units(record);
  graph.units_ = merged_units(ids, unit_of_root);
  auto unit_of = [&](int64_t raw) {
    const auto found = unit_of_root.find(ids.root(raw));
    return found == unit_of_root.end() ? int64_t{-1} : found->second;
  };
  // Axes and sites in unit ids.
  std::vector<std::vector<int>> unit_axes(graph.units_.size());
  for (const auto& key : record.axis_order) {
    GraphAxis axis;
    axis.tensor = std::get<0>(key);
    axis.layer = std::get<1>(key);
    axis.dim = std::get<2>(key);
    for (int64_t raw : record.axes[key]) {
      axis.owner.push_back(unit_of(raw));
    }
    const int index = static_cast<int>(graph.axes_.size());
    for (int64_t u : axis.owner) {
      if (unit_axes[u].empty() || unit_axes[u].back() != index) {
        unit_axes[u].push_back(index);
      }
    }
    graph.axes_.push_back(std::move(axis));
  }
  for (size_t s = 0; s < graph.sites_.size(); ++s) {
    for (int64_t raw : record.site_channels[s]) {
      graph.sites_[s].owner.push_back(unit_of(raw));
    }
  }
  graph.groups_ = group_units(graph.axes_, graph.units_, unit_axes);
  for (auto& group : graph.groups_) {
    group.initial_size = static_cast<int64_t>(group.units.size());
    group.name = group_name(group, graph.axes_, graph.tensors_, graph.layers_);
  }
  return graph;
}

}  // namespace demon
