// How a DependencyGraph reads to a person: names of the enums, and the summary.

#include <set>
#include <sstream>

#include "demon/graph.h"
#include "graph/axis_math.h"

namespace demon {

std::string to_string(ActivationKind kind) {
  switch (kind) {
    case ActivationKind::kRelu:
      return "ReLU";
    case ActivationKind::kLeakyRelu:
      return "LeakyReLU";
    case ActivationKind::kGelu:
      return "GELU";
    case ActivationKind::kSilu:
      return "SiLU";
    case ActivationKind::kSigmoid:
      return "Sigmoid";
    case ActivationKind::kTanh:
      return "Tanh";
    case ActivationKind::kHardtanh:
      return "Hardtanh";
  }
  return "?";
}

std::string to_string(LayerKind kind) {
  switch (kind) {
    case LayerKind::kConv:
      return "Conv";
    case LayerKind::kLinear:
      return "Linear";
    case LayerKind::kBatchNorm:
      return "BatchNorm";
    case LayerKind::kGroupNorm:
      return "GroupNorm";
    case LayerKind::kLayerNorm:
      return "LayerNorm";
    case LayerKind::kChannelSelection:
      return "ChannelSelection";
    case LayerKind::kPReLU:
      return "PReLU";
    case LayerKind::kInstanceNorm:
      return "InstanceNorm";
  }
  return "?";
}

std::string DependencyGraph::describe() const {
  std::ostringstream out;
  int64_t prunable_units = 0;
  for (size_t u = 0; u < units_.size(); ++u)
    prunable_units += prunable(static_cast<int64_t>(u));
  out << "DependencyGraph: " << layers_.size() << " layers, " << groups_.size()
      << " channel groups, " << live_units() << " units (" << prunable_units << " prunable), "
      << sites_.size() << " activation sites, " << flops() << " FLOPs/sample\n";
  out << "layers:\n";
  for (const auto& layer : layers_) {
    out << "  " << layer.name << "  " << to_string(layer.kind);
    if (layer.weight >= 0)
      out << "  weight " << detail::shape_string(tensors_[layer.weight].tensor.sizes().vec());
    out << "\n";
  }
  out << "groups:\n";
  for (size_t g = 0; g < groups_.size(); ++g) {
    const auto& group = groups_[g];
    int64_t pinned = 0, unobservable = 0, ready = 0;
    std::set<std::string> reasons;
    for (int64_t u : group.units) {
      const auto& unit = units_[u];
      if (unit.pinned) {
        ++pinned;
        reasons.insert(unit.pin_reason);
      } else if (!unit.observable || unit.read_sites.empty()) {
        ++unobservable;
      } else {
        ++ready;
      }
    }
    out << "  #" << g << " " << group.name << ": " << group.units.size() << "/"
        << group.initial_size << " units";
    if (ready)
      out << ", " << ready << " prunable";
    if (pinned) {
      out << ", " << pinned << " pinned (";
      bool first = true;
      for (const auto& r : reasons) {
        out << (first ? "" : "; ") << r;
        first = false;
      }
      out << ")";
    }
    if (unobservable)
      out << ", " << unobservable << " unobservable (read without an activation)";
    out << "\n    axes:";
    for (int a : group.axes) {
      const auto& axis = axes_[a];
      if (axis.tensor >= 0) {
        out << " " << tensors_[axis.tensor].name << "[" << axis.dim << "]";
      } else {
        out << " " << layers_[axis.layer].name << (axis.dim == 0 ? "(in)" : "(out)");
      }
    }
    out << "\n";
  }
  if (!unknown_ops_.empty()) {
    out << "unknown ops (the channels they touch are unprunable):";
    for (const auto& [op, count] : unknown_ops_)
      out << " " << op << " x" << count;
    out << "\n";
  }
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const DependencyGraph& graph) {
  return out << graph.describe();
}

}  // namespace demon
