#include "graph/rule_context.h"

#include "demon/channel_selection.h"
#include "detail/module_tree.h"
#include "graph/axis_math.h"

namespace demon::detail {

int GraphRecord::find_tensor(const std::string& name) const {
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].name == name) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

RuleContext::RuleContext(torch::nn::Module& model) {
  for (const auto& named : named_modules_of(model)) {
    // Named, not a structured binding: the lambda below captures them (C++20 before clang 16).
    const std::string& prefix = named.first;
    const auto& module = named.second;
    module_names_[module.get()] = prefix;
    modules_[module.get()] = module;
    auto add = [&](const std::string& local, const torch::Tensor& tensor, bool is_param) {
      if (!tensor.defined() || tensor_index_.count(tensor.unsafeGetTensorImpl())) {
        return;
      }
      tensor_index_[tensor.unsafeGetTensorImpl()] = static_cast<int>(record_.tensors.size());
      tensor_module_.push_back(module.get());
      record_.tensors.push_back(
          {prefix.empty() ? local : prefix + "." + local, tensor, is_param, -1});
    };
    for (const auto& p : module->named_parameters(/*recurse=*/false)) {
      add(p.key(), p.value(), true);
    }
    for (const auto& b : module->named_buffers(/*recurse=*/false)) {
      add(b.key(), b.value(), false);
    }
  }
}

void RuleContext::pin(const ChannelFlow& flow, const std::string& reason) {
  if (flow.tracked()) {
    ids().pin_all(flow.channels, reason);
  } else if (flow.is_param()) {
    record_.pinned_tensors.emplace(flow.tensor, reason);
  }
}

void RuleContext::pin_each(const std::vector<ChannelFlow>& flows, const std::string& reason) {
  for (const auto& flow : flows) {
    pin(flow, reason);
  }
}

void RuleContext::unknown_op(const OpCall& call) {
  ++record_.unknown_ops[call.op];
  pin_each(call.in, "unknown op " + call.op);
}

std::vector<int64_t> RuleContext::ids_along(const ChannelFlow& flow, int64_t dim, int64_t size,
                                            const std::string& reason) {
  if (flow.tracked() && flow.dim == dim && flow.width() == size) {
    return flow.channels;
  }
  pin(flow, reason);
  return ids().make_pinned(size, reason);
}

void RuleContext::record_read(const ChannelFlow& flow, const std::vector<bool>* only) {
  for (size_t i = 0; i < flow.channels.size(); ++i) {
    if (only != nullptr && !(*only)[i]) {
      continue;
    }
    const int32_t set = flow.zero_sources.empty() ? 0 : flow.zero_sources[i];
    if (set == 0) {
      ids().mark_unobservable(flow.channels[i]);
    } else {
      ids().add_reads(flow.channels[i], zero_sources_.sites(set));
    }
  }
}

void RuleContext::record_axis(int tensor, int64_t dim, const std::vector<int64_t>& ids) {
  record_axis_key({tensor, -1, dim}, ids);
}

void RuleContext::record_virtual_axis(int layer, int64_t side, const std::vector<int64_t>& ids) {
  record_axis_key({-1, layer, side}, ids);
}

void RuleContext::record_axis_key(const AxisKey& key, const std::vector<int64_t>& channels) {
  auto found = record_.axes.find(key);
  if (found == record_.axes.end()) {
    record_.axis_order.push_back(key);
    record_.axes[key] = channels;
    return;
  }
  if (found->second.size() != channels.size()) {
    // Different sizes cannot be the same channels: keep both sets unprunable.
    ids().pin_all(found->second, "axis recorded with two different sizes");
    ids().pin_all(channels, "axis recorded with two different sizes");
    return;
  }
  ids().unite_all(found->second, channels);
}

int RuleContext::add_site(ActivationKind kind, size_t order, const Shape& shape, int64_t dim,
                          const std::vector<int64_t>& channels) {
  const int site = static_cast<int>(record_.sites.size());
  // Per channel over the whole batch here; assembly divides by the batch.
  const int64_t width = shape.at(static_cast<size_t>(dim));
  const int64_t positions = width > 0 ? product(shape, 0, shape.size()) / width : 0;
  record_.sites.push_back({kind, order, dim, {}, positions});
  record_.site_channels.push_back(channels);
  return site;
}

int RuleContext::tensor_index(const torch::Tensor& tensor) const {
  if (!tensor.defined()) {
    return -1;
  }
  const auto found = tensor_index_.find(tensor.unsafeGetTensorImpl());
  return found == tensor_index_.end() ? -1 : found->second;
}

torch::nn::Module* RuleContext::module_of(int index) const {
  return index >= 0 ? tensor_module_.at(index) : nullptr;
}

torch::nn::Module* RuleContext::module_of(const ChannelFlow& flow) const {
  return flow.is_param() ? module_of(flow.tensor) : nullptr;
}

int RuleContext::buffer_of(torch::nn::Module* module, const std::string& local) const {
  const std::string& prefix = module_names_.at(module);
  return record_.find_tensor(prefix.empty() ? local : prefix + "." + local);
}

int RuleContext::layer_for(torch::nn::Module* module, LayerKind kind) {
  auto found = layer_index_.find(module);
  if (found != layer_index_.end()) {
    return found->second;
  }
  const int index = static_cast<int>(record_.layers.size());
  layer_index_[module] = index;
  record_.layers.push_back({module_names_[module], kind, modules_[module], 0, -1});
  for (size_t t = 0; t < record_.tensors.size(); ++t) {
    if (tensor_module_[t] == module) {
      record_.tensors[t].layer = index;
    }
  }
  return index;
}

const std::vector<int64_t>& RuleContext::selection_outputs(ChannelSelectionImpl* selection) {
  auto found = selection_outputs_.find(selection);
  if (found == selection_outputs_.end()) {
    const int layer = layer_for(selection, LayerKind::kChannelSelection);
    auto channels = ids().make(selection->out_channels());
    record_virtual_axis(layer, 1, channels);
    found = selection_outputs_.emplace(selection, std::move(channels)).first;
  }
  return found->second;
}

}  // namespace demon::detail
