#include "demon/surgery.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <typeinfo>

#include "demon/channel_selection.h"
#include "demon/errors.h"
#include "detail/optimizer_spec.h"
#include "detail/optimizer_state.h"
#include "detail/torch_compat.h"
#include "layers/layer_spec.h"

namespace demon {
namespace {

using Slice = std::function<torch::Tensor(const torch::Tensor&)>;

// The slicers users registered, newest first: they take precedence over the built-in
// optimizers' (detail/optimizer_spec.h).
std::vector<StateSlicer>& slicers() {
  static std::vector<StateSlicer> registry;
  return registry;
}

std::mutex& slicers_mutex() {
  static std::mutex mutex;
  return mutex;
}

// Restricts a tensor to `keeps` (dim → kept indices), one dim after the other.
torch::Tensor keep_all(torch::Tensor tensor, const std::map<int64_t, std::vector<int64_t>>& keeps) {
  for (const auto& [dim, keep] : keeps) {
    tensor = keep_along(tensor, dim, keep);
  }
  return tensor;
}

int64_t parameter_count(const DependencyGraph& graph) {
  int64_t count = 0;
  for (const auto& t : graph.tensors()) {
    if (t.is_parameter)
      count += t.tensor.numel();
  }
  return count;
}

}  // namespace

int64_t group_floor(const std::string& name, int64_t initial_width, const PruneOptions& options) {
  const auto fraction_floor = static_cast<int64_t>(
      std::ceil(options.min_width_fraction() * static_cast<double>(initial_width) - 1e-9));
  int64_t floor = std::max(options.min_width(), fraction_floor);
  const auto own = options.group_min_width().find(name);
  if (own != options.group_min_width().end())
    floor = std::max(floor, own->second);
  return floor;
}

int64_t group_width_after(int64_t width, int64_t requested, int64_t initial_width,
                          const PruneOptions& options, const std::string& name) {
  int64_t after = std::max(width - requested, group_floor(name, initial_width, options));
  const int64_t multiple = options.width_multiple();
  after = (after + multiple - 1) / multiple * multiple;  // keeping a dead unit changes nothing
  return std::min(width, after);
}

namespace detail {

bool slice_optimizer_state(torch::optim::OptimizerParamState& state, const Slice& slice) {
  {
    std::lock_guard<std::mutex> lock(slicers_mutex());
    for (const auto& slicer : slicers()) {
      if (slicer(state, slice))
        return true;
    }
  }
  for (const auto& spec : builtin_optimizers()) {
    if (spec.slicer(state, slice))
      return true;
  }
  return false;
}

std::string optimizer_state_problem(const torch::optim::OptimizerParamState& state,
                                    const torch::optim::OptimizerOptions& options,
                                    const torch::Tensor& param) {
  NeededState needed;  // what each step reads
  for (const auto& spec : builtin_optimizers()) {
    if (auto found = spec.needed_state(state, options)) {
      needed = std::move(*found);
      break;
    }
  }
  for (const auto& [name, tensor] : needed) {
    if (!tensor.defined())
      return std::string("no ") + name;
    if (tensor.scalar_type() != param.scalar_type()) {
      return std::string(name) + " is " + c10::toString(tensor.scalar_type()) + ", not " +
             c10::toString(param.scalar_type());
    }
  }
  return {};
}

}  // namespace detail

void register_state_slicer(StateSlicer slicer) {
  std::lock_guard<std::mutex> lock(slicers_mutex());
  slicers().insert(slicers().begin(), std::move(slicer));
}

torch::Tensor keep_along(const torch::Tensor& tensor, int64_t dim,
                         const std::vector<int64_t>& keep) {
  const auto format =
      tensor.dim() == 4 ? tensor.suggest_memory_format() : torch::MemoryFormat::Contiguous;
  auto index = torch::tensor(keep, torch::kLong).to(tensor.device());
  return tensor.index_select(dim, index).contiguous(format);
}

namespace {

void check_prune_options(const PruneOptions& options) {
  if (options.min_width() < 1) {
    throw ValueError("demon::prune_units: min_width must be >= 1, got " +
                     std::to_string(options.min_width()));
  }
  if (!(options.min_width_fraction() >= 0.0 && options.min_width_fraction() <= 1.0)) {
    throw ValueError("demon::prune_units: min_width_fraction must be in [0, 1], got " +
                     std::to_string(options.min_width_fraction()));
  }
  if (options.width_multiple() < 1) {
    throw ValueError("demon::prune_units: width_multiple must be >= 1, got " +
                     std::to_string(options.width_multiple()));
  }
}

// Phase 1: the request checked (every unit exists, is live and prunable) and split, group by
// group, into the units removed and those the width floors keep (the first requested in channel
// order are kept). Returns, per unit of the graph, whether it is removed.
std::vector<bool> split_at_floors(const DependencyGraph& graph, const std::vector<int64_t>& units,
                                  const PruneOptions& options, PruneResult& result) {
  std::map<int, std::vector<int64_t>> requested;
  for (int64_t u : units) {
    if (u < 0 || u >= static_cast<int64_t>(graph.units().size())) {
      throw ValueError("demon::prune_units: no unit " + std::to_string(u));
    }
    const GraphUnit& unit = graph.units()[u];
    if (unit.removed) {
      throw ValueError("demon::prune_units: unit " + std::to_string(u) + " was already removed");
    }
    if (unit.pinned) {
      throw ValueError("demon::prune_units: unit " + std::to_string(u) + " of group \"" +
                       graph.groups()[unit.group].name + "\" is unprunable: " + unit.pin_reason);
    }
    auto& list = requested[unit.group];
    if (std::find(list.begin(), list.end(), u) == list.end())
      list.push_back(u);
  }
  std::vector<bool> removing(graph.units().size(), false);
  for (auto& [g, list] : requested) {
    const auto& order = graph.groups()[g].units;  // channel order
    std::sort(list.begin(), list.end(), [&](int64_t a, int64_t b) {
      return std::find(order.begin(), order.end(), a) < std::find(order.begin(), order.end(), b);
    });
    const auto width = static_cast<int64_t>(order.size());
    const auto& group = graph.groups()[g];
    const int64_t removable = width - group_width_after(width, static_cast<int64_t>(list.size()),
                                                        group.initial_size, options, group.name);
    for (size_t i = 0; i < list.size(); ++i) {
      const bool keep = static_cast<int64_t>(list.size() - i) > removable;
      (keep ? result.kept_by_floor : result.removed).push_back(list[i]);
      removing[list[i]] = !keep;
    }
  }
  return result.removed.empty() ? std::vector<bool>() : removing;
}

// The indices each axis keeps, for the axes that lose some: of tensors (tensor → dim → keep) and
// of layers without a tensor, such as a ChannelSelection (layer → side → keep).
struct AxisKeeps {
  std::map<int, std::map<int64_t, std::vector<int64_t>>> tensors;
  std::map<int, std::map<int64_t, std::vector<int64_t>>> layers;
};

// Phase 2.
AxisKeeps kept_indices(const DependencyGraph& graph, const std::vector<bool>& removing) {
  AxisKeeps keeps;
  for (const auto& axis : graph.axes()) {
    std::vector<int64_t> keep;
    for (size_t i = 0; i < axis.owner.size(); ++i) {
      if (axis.owner[i] < 0 || !removing[axis.owner[i]])
        keep.push_back(static_cast<int64_t>(i));
    }
    if (keep.size() == axis.owner.size())
      continue;
    if (axis.tensor >= 0) {
      keeps.tensors[axis.tensor][axis.dim] = std::move(keep);
    } else {
      keeps.layers[axis.layer][axis.dim] = std::move(keep);
    }
  }
  return keeps;
}

// A tensor's new data, gradient and optimizer state, made before anything is touched.
struct Staged {
  torch::Tensor target;
  torch::Tensor data;
  torch::Tensor grad;
  std::unique_ptr<torch::optim::OptimizerParamState> state;
};

// Phase 3: every new tensor and optimizer state, staged; throws, with nothing changed, for
// optimizer state of the wrong shape or of a type no slicer knows.
std::vector<Staged> stage_tensors(const DependencyGraph& graph, const AxisKeeps& keeps,
                                  torch::optim::Optimizer* optimizer) {
  std::vector<Staged> staged;
  auto* states = optimizer != nullptr ? &optimizer->state() : nullptr;
  torch::NoGradGuard no_grad;
  for (const auto& tensor_keep : keeps.tensors) {
    // Named, not a structured binding: the slicer below captures `along` (C++20 before clang 16).
    const GraphTensor& entry = graph.tensors()[tensor_keep.first];
    const auto& along = tensor_keep.second;
    Staged s;
    s.target = entry.tensor;
    s.data = keep_all(entry.tensor.detach(), along);
    if (entry.tensor.grad().defined())
      s.grad = keep_all(entry.tensor.grad(), along);
    if (states != nullptr) {
      auto found = states->find(detail::optimizer_state_key(entry.tensor));
      if (found != states->end()) {
        s.state = found->second->clone();
        const auto old_shape = entry.tensor.sizes().vec();
        const Slice slice = [&](const torch::Tensor& value) {
          if (value.sizes().vec() != old_shape) {
            throw ValueError("demon::prune_units: optimizer state of \"" + entry.name +
                             "\" has shape " + c10::str(value.sizes()) + ", not the parameter's " +
                             c10::str(entry.tensor.sizes()));
          }
          return keep_all(value, along);
        };
        if (!detail::slice_optimizer_state(*s.state, slice)) {
          const auto& state_object = *found->second;
          throw ValueError(
              std::string("demon::prune_units: cannot slice optimizer state of type ") +
              typeid(state_object).name() + " for \"" + entry.name +
              "\"; register a demon::StateSlicer for it");
        }
      }
    }
    staged.push_back(std::move(s));
  }
  return staged;
}

// Phase 4: the staged tensors and states take their places, then the layers whose tensors or
// selections changed update their options. Nothing here can fail for a reason the staging did
// not already rule out.
void commit(DependencyGraph& graph, std::vector<Staged>& staged, const AxisKeeps& keeps,
            torch::optim::Optimizer* optimizer) {
  {
    torch::NoGradGuard no_grad;
    for (auto& s : staged) {
      detail::set_data_of_new_shape(s.target, s.data);
      if (s.grad.defined())
        s.target.mutable_grad() = s.grad;
      if (s.state)
        optimizer->state()[detail::optimizer_state_key(s.target)] = std::move(s.state);
    }
  }
  std::set<int> touched_layers;
  for (const auto& [t, along] : keeps.tensors) {
    if (graph.tensors()[t].layer >= 0)
      touched_layers.insert(graph.tensors()[t].layer);
  }
  const auto all = [](int64_t n) {
    std::vector<int64_t> v(n);
    for (int64_t i = 0; i < n; ++i)
      v[i] = i;
    return v;
  };
  for (const auto& [layer, along] : keeps.layers) {
    auto* selection = dynamic_cast<ChannelSelectionImpl*>(graph.layers()[layer].module.get());
    const auto in = along.count(0) ? along.at(0) : all(selection->in_channels());
    const auto out = along.count(1) ? along.at(1) : all(selection->out_channels());
    selection->select(in, out);
  }
  for (int layer : touched_layers) {
    detail::sync_module_options(*graph.layers()[layer].module);
  }
}

}  // namespace

PruneResult prune_units(DependencyGraph& graph, const std::vector<int64_t>& units,
                        torch::optim::Optimizer* optimizer, PruneOptions options) {
  check_prune_options(options);
  PruneResult result;
  result.parameters_before = parameter_count(graph);
  const std::vector<bool> removing = split_at_floors(graph, units, options, result);
  if (result.removed.empty()) {
    result.parameters_after = result.parameters_before;
    return result;
  }
  const AxisKeeps keeps = kept_indices(graph, removing);
  std::vector<Staged> staged = stage_tensors(graph, keeps, optimizer);
  commit(graph, staged, keeps, optimizer);
  graph.remove_units(result.removed);
  result.parameters_after = parameter_count(graph);
  return result;
}

}  // namespace demon
