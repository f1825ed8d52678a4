// Rules for ops whose parameters belong to a layer module (convolution, normalization, linear),
// for parameters entering the graph, and for the activations whose outputs DemP reads. What a
// layer type's weight looks like is its LayerSpec's (layers/).

#include <torch/csrc/autograd/functions/accumulate_grad.h>

#include <algorithm>
#include <string>
#include <vector>

#include "detail/autograd_nodes.h"
#include "graph/axis_math.h"
#include "graph/rule_context.h"
#include "graph/rules/rules.h"
#include "layers/layer_spec.h"

namespace demon::detail::rules {
namespace {

// Whether the layer's own tensor `local` ("weight", "bias") exists but did not reach the op as
// that trainable parameter (frozen, or replaced by a computed one): it would not be sliced with
// the channels.
bool not_sliceable(RuleContext& context, torch::nn::Module* module, const OpCall& call,
                   size_t index, const char* local) {
  const int tensor = context.buffer_of(module, local);
  if (tensor < 0 || !context.tensor(tensor).defined()) {
    return false;
  }
  return !(call.in.size() > index && call.in[index].is_param() && call.in[index].tensor == tensor);
}

// The spec of `module` if it is a layer of this kind, else nullptr.
const LayerSpec* spec_of(const torch::nn::Module* module, LayerKind kind) {
  const LayerSpec* spec = module != nullptr ? find_layer_spec(*module) : nullptr;
  return spec != nullptr && spec->kind == kind ? spec : nullptr;
}

// The optional third input (bias) when it is one of the model's parameters.
const ChannelFlow* param_input(const OpCall& call, size_t index) {
  return call.in.size() > index && call.in[index].is_param() ? &call.in[index] : nullptr;
}

// The layer's per-channel buffers (running statistics) that exist, along `channels`.
void record_channel_buffers(RuleContext& context, torch::nn::Module* module, const LayerSpec& spec,
                            const std::vector<int64_t>& channels) {
  for (const auto& buffer : spec.channel_buffers) {
    const int t = context.buffer_of(module, buffer);
    if (t >= 0 && context.tensor(t).defined()) {
      context.record_axis(t, 0, channels);
    }
  }
}

// The model's tensor that reaches input `index` of `node` directly or through ops in `through`
// alone, each on that tensor only (2.x's prelu reshapes its weight to [C, 1, ...] before the
// kernel; InstanceNorm repeats its weight N times), or -1.
int parameter_behind(const RuleContext& context, const torch::autograd::Node& node, size_t index,
                     const std::vector<std::string>& through) {
  if (index >= node.next_edges().size()) {
    return -1;
  }
  const torch::autograd::Node* producer = node.next_edges()[index].function.get();
  for (int hops = 0; producer != nullptr && hops < 4; ++hops) {
    if (const auto* accumulate = dynamic_cast<const torch::autograd::AccumulateGrad*>(producer)) {
      return context.tensor_index(accumulate->variable);
    }
    const std::string op = op_name(*producer);
    if (std::find(through.begin(), through.end(), op) == through.end() ||
        producer->next_edges().size() != 1) {
      return -1;
    }
    producer = producer->next_edges()[0].function.get();
  }
  return -1;
}

int parameter_behind_views(const RuleContext& context, const torch::autograd::Node& node,
                           size_t index) {
  static const std::vector<std::string> views = {"View",       "Reshape",   "ReshapeAlias",
                                                 "UnsafeView", "Unsqueeze", "Squeeze"};
  return parameter_behind(context, node, index, views);
}

// InstanceNorm runs as a BatchNorm over [1, N·C, ...] (the batch merged into the channels, which
// the reshape rule tracks as N tiles of the C channels) with its weight, bias and running
// statistics repeated N times. Index j of every tile is channel j: cut together with the module's
// own tensors. Without running statistics each (sample, channel) is normalized alone.
void instance_norm(RuleContext& context, OpCall& call, torch::nn::Module* module,
                   const LayerSpec& spec) {
  static const std::vector<std::string> repeat = {"Repeat"};
  const ChannelFlow& x = call.in.at(0);
  const int64_t width = spec.width(*module);
  const int weight = context.buffer_of(module, "weight");
  const int bias = context.buffer_of(module, "bias");
  if (parameter_behind(context, call.node, 1, repeat) != weight ||
      (bias >= 0 && context.tensor(bias).defined() &&
       parameter_behind(context, call.node, 2, repeat) != bias)) {
    context.pin_each(call.in, spec.name + std::string(" whose weight or bias is not a trainable "
                                                      "parameter"));
    return;
  }
  if (!x.tracked() || x.dim != 1 || width <= 0 || x.width() % width != 0) {
    context.pin_each(call.in, std::string(spec.name) + " over an untracked channel axis");
    return;
  }
  context.layer_for(module, LayerKind::kInstanceNorm);
  const std::vector<int64_t> channels(x.channels.begin(), x.channels.begin() + width);
  for (int64_t i = width; i < x.width(); ++i) {
    context.ids().unite(channels[i % width], x.channels[i]);
  }
  context.record_axis(weight, 0, channels);
  if (bias >= 0 && context.tensor(bias).defined()) {
    context.record_axis(bias, 0, channels);
  }
  record_channel_buffers(context, module, spec, channels);
  call.out[0] = ChannelFlow::tracked(*x.shape, 1, x.channels);
}

// Linear is mm(x, W.t()) or addmm(b, x, W.t()).
void linear(RuleContext& context, OpCall& call, const ChannelFlow* bias, const ChannelFlow& x,
            const ChannelFlow& weight_t) {
  auto* module = context.module_of(weight_t);
  const LayerSpec* spec = spec_of(module, LayerKind::kLinear);
  const auto& out_shape = call.out[0].shape;
  if (spec == nullptr || !weight_t.transposed || !out_shape || out_shape->size() != 2 ||
      (x.tracked() && x.rank() != 2)) {
    // A product of two activations (attention) or of a non-Linear weight.
    context.pin_each({bias ? *bias : ChannelFlow{}, x, weight_t},
                     "matrix product that is not a Linear layer");
    return;
  }
  const int layer = context.layer_for(module, LayerKind::kLinear);
  context.layer(layer).weight = weight_t.tensor;
  context.record().linear_rows[layer] = (*out_shape)[0];  // per sample once the batch is known
  const int64_t in_features = context.tensor(weight_t.tensor).size(1);
  const auto in_ids = context.ids_along(
      x, 1, in_features, x.is_data() ? "input of " + context.layer(layer).name : "network input");
  const auto out_ids = context.ids().make((*out_shape)[1]);
  context.record_axis(weight_t.tensor, 0, out_ids);
  context.record_axis(weight_t.tensor, 1, in_ids);
  if (x.tracked() && x.dim == 1) {
    context.record_read(x);
  }
  if (bias != nullptr && bias->is_param()) {
    context.record_axis(bias->tensor, 0, out_ids);
  } else if (bias != nullptr) {
    context.ids().pin_all(out_ids, "Linear bias the engine cannot slice");
  }
  call.out[0] = ChannelFlow::tracked(*out_shape, 1, out_ids);
}

}  // namespace

void accumulate_grad(RuleContext& context, OpCall& call) {
  const auto* accumulate = dynamic_cast<const torch::autograd::AccumulateGrad*>(&call.node);
  call.out.assign(1, ChannelFlow{});
  if (accumulate == nullptr) {
    return;
  }
  const int tensor = context.tensor_index(accumulate->variable);
  if (tensor >= 0) {
    call.out[0].kind = ChannelFlow::Kind::kParam;
    call.out[0].tensor = tensor;
    call.out[0].shape = accumulate->variable.sizes().vec();
  } else {
    call.out[0] = ChannelFlow::opaque(accumulate->variable.sizes().vec());  // not the model's
  }
}

void activation(RuleContext& context, OpCall& call) {
  const ChannelFlow& in = call.in.at(0);
  if (!in.tracked() || !call.activation) {
    return;
  }
  const int site = context.add_site(*call.activation, call.order, *in.shape, in.dim, in.channels);
  const int32_t set = context.zero_sources().intern({site});
  call.out[0] = ChannelFlow::tracked(*in.shape, in.dim, in.channels,
                                     std::vector<int32_t>(in.channels.size(), set));
}

void conv(RuleContext& context, OpCall& call) {
  const ChannelFlow& x = call.in.at(0);
  const ChannelFlow weight = call.in.size() > 1 ? call.in[1] : ChannelFlow{};
  auto* module = context.module_of(weight);
  const LayerSpec* spec = spec_of(module, LayerKind::kConv);
  const auto& out_shape = call.out[0].shape;
  if (spec == nullptr || !out_shape || out_shape->size() < 3 ||
      (x.tracked() && x.rank() != static_cast<int64_t>(out_shape->size()))) {
    context.give_up(call, "convolution the engine cannot map to a Conv or ConvTranspose module");
    return;
  }
  if (not_sliceable(context, module, call, 2, "bias")) {
    context.give_up(call, std::string(spec->name) + " bias that is not a trainable parameter");
    return;
  }
  // A module's weight used by the other kind of convolution (a tied autoencoder) has the other
  // layout.
  const auto transposed = convolution_transposed(call.node);
  if (transposed && *transposed != spec->transposed) {
    context.give_up(call, std::string(spec->name) + " weight used by a " +
                              (*transposed ? "transposed " : "") + "convolution");
    return;
  }
  const int64_t groups = spec->groups_of(*module);
  const Shape out = *out_shape;
  const torch::Tensor& w = context.tensor(weight.tensor);
  // Weight dim 0 holds every channel of its side; dim 1 one group's worth of the other side.
  const int64_t out_channels = out[1];
  const int64_t in_channels = spec->transposed ? w.size(0) : w.size(1) * groups;
  const int layer = context.layer_for(module, LayerKind::kConv);
  context.layer(layer).weight = weight.tensor;
  // Each weight element is applied once per output position; a transposed convolution's once
  // per input position.
  int64_t positions = product(out, 2, out.size());
  if (spec->transposed) {
    const torch::Tensor data = saved_data_input(call.node);
    if (x.shape) {
      positions = product(*x.shape, 2, x.shape->size());
    } else if (data.defined()) {
      positions = product(data.sizes().vec(), 2, static_cast<size_t>(data.dim()));
    }
  }
  context.layer(layer).outputs_per_sample = positions;

  const auto in_ids = context.ids_along(
      x, 1, in_channels, x.is_data() ? "input of " + context.layer(layer).name : "network input");
  const auto out_ids = context.ids().make(out_channels);
  if (groups == 1 || spec->weight_out_dim == 0) {
    context.record_axis(weight.tensor, spec->weight_out_dim, out_ids);
  }
  if (groups == 1 || spec->weight_in_dim == 0) {
    context.record_axis(weight.tensor, spec->weight_in_dim, in_ids);
  }
  if (const ChannelFlow* bias = param_input(call, 2)) {
    context.record_axis(bias->tensor, 0, out_ids);
  }
  if (groups == 1) {
    if (x.tracked()) {
      context.record_read(x);
    }
  } else {
    // A grouped (or depthwise) convolution: group g's outputs read only group g's inputs, so
    // the two go together, a whole group at a time (and the reads stay inside the unit).
    const int64_t in_per_group = in_channels / groups;
    const int64_t out_per_group = out_channels / groups;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t anchor = out_ids[g * out_per_group];
      for (int64_t k = 0; k < out_per_group; ++k) {
        context.ids().unite(anchor, out_ids[g * out_per_group + k]);
      }
      for (int64_t k = 0; k < in_per_group; ++k) {
        context.ids().unite(anchor, in_ids[g * in_per_group + k]);
      }
    }
  }
  call.out[0] = ChannelFlow::tracked(out, 1, out_ids);
}

void batch_norm(RuleContext& context, OpCall& call) {
  const ChannelFlow& x = call.in.at(0);
  const ChannelFlow weight = call.in.size() > 1 ? call.in[1] : ChannelFlow{};
  const auto saved = batch_norm_saved(call.node);
  // InstanceNorm reaches here with its weight repeated.
  static const std::vector<std::string> repeat = {"Repeat"};
  if (auto* instance = context.module_of(parameter_behind(context, call.node, 1, repeat))) {
    if (const LayerSpec* spec = spec_of(instance, LayerKind::kInstanceNorm)) {
      instance_norm(context, call, instance, *spec);
      return;
    }
  }
  // Without weight or running statistics, each channel is normalized by its own batch
  // statistics alone (InstanceNorm's default, functional batch_norm): the channels pass, and an
  // all-zero channel stays zero.
  if (saved && !saved->weight.defined() && !saved->running_mean.defined() &&
      !(call.in.size() > 2 && call.in[2].kind != ChannelFlow::Kind::kExternal)) {
    if (x.tracked() && x.dim != 1) {
      context.give_up(call, "batch normalization over another axis than the tracked channels");
    } else if (x.tracked()) {
      call.out[0] = ChannelFlow::tracked(*x.shape, 1, x.channels, x.zero_sources);
    }
    return;
  }
  // The weight names the module; without affine parameters, the running mean the node saved.
  torch::nn::Module* module =
      weight.is_param()
          ? context.module_of(weight)
          : context.module_of(context.tensor_index(saved ? saved->running_mean : torch::Tensor()));
  const LayerSpec* spec = spec_of(module, LayerKind::kBatchNorm);
  if (spec != nullptr && (not_sliceable(context, module, call, 1, "weight") ||
                          not_sliceable(context, module, call, 2, "bias"))) {
    context.pin_each(call.in, "BatchNorm whose weight or bias is not a trainable parameter");
    return;
  }
  if (spec == nullptr || !x.tracked() || x.dim != 1) {
    context.pin_each(call.in, spec != nullptr
                                  ? "BatchNorm over an untracked channel axis"
                                  : "batch normalization whose weight or running statistics "
                                    "belong to no BatchNorm or InstanceNorm module (an "
                                    "InstanceNorm with running statistics needs affine=true)");
    return;
  }
  context.layer_for(module, LayerKind::kBatchNorm);
  if (weight.is_param()) {
    context.record_axis(weight.tensor, 0, x.channels);
  }
  if (const ChannelFlow* bias = param_input(call, 2)) {
    context.record_axis(bias->tensor, 0, x.channels);
  }
  record_channel_buffers(context, module, *spec, x.channels);
  call.out[0] = ChannelFlow::tracked(*x.shape, 1, x.channels);
}

void group_norm(RuleContext& context, OpCall& call) {
  const ChannelFlow& x = call.in.at(0);
  const ChannelFlow weight = call.in.size() > 1 ? call.in[1] : ChannelFlow{};
  torch::nn::Module* module = context.module_of(weight);
  const LayerSpec* spec = spec_of(module, LayerKind::kGroupNorm);
  if (spec == nullptr || !x.tracked() || x.dim != 1) {
    context.pin_each(call.in, "GroupNorm without affine parameters (cannot map to a module)");
    return;
  }
  if (not_sliceable(context, module, call, 2, "bias")) {
    context.pin_each(call.in, "GroupNorm whose bias is not a trainable parameter");
    return;
  }
  context.layer_for(module, LayerKind::kGroupNorm);
  // Statistics are per group: removing a whole group changes no other group, removing part of
  // one would. So a group's channels form one unit.
  const int64_t groups = spec->groups_of(*module);
  const int64_t per_group = x.width() / groups;
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t k = 1; k < per_group; ++k) {
      context.ids().unite(x.channels[g * per_group], x.channels[g * per_group + k]);
    }
  }
  context.record_axis(weight.tensor, 0, x.channels);
  if (const ChannelFlow* bias = param_input(call, 2)) {
    context.record_axis(bias->tensor, 0, x.channels);
  }
  call.out[0] = ChannelFlow::tracked(*x.shape, 1, x.channels);
}

void prelu(RuleContext& context, OpCall& call) {
  const ChannelFlow& x = call.in.at(0);
  const int weight = parameter_behind_views(context, call.node, 1);
  auto* module = context.module_of(weight);
  const LayerSpec* spec = spec_of(module, LayerKind::kPReLU);
  // A frozen slope has no AccumulateGrad: no module is found, and the channels stay.
  if (spec == nullptr || context.buffer_of(module, "weight") != weight ||
      context.tensor(weight).dim() != 1) {
    context.give_up(call, "PReLU whose slope is not its module's trainable weight");
    return;
  }
  context.layer_for(module, LayerKind::kPReLU);
  if (!x.tracked()) {
    return;
  }
  // One slope per channel of dim 1: it goes with that channel. A shared slope, or channels
  // tracked on another dim, pass through. prelu(0) = 0 keeps where zeros come from.
  if (x.dim == 1 && context.tensor(weight).size(0) > 1) {
    if (context.tensor(weight).size(0) != x.width()) {
      context.give_up(call, "PReLU with a slope per channel of another width");
      return;
    }
    context.record_axis(weight, 0, x.channels);
  }
  call.out[0] = ChannelFlow::tracked(*x.shape, x.dim, x.channels, x.zero_sources);
}

void layer_norm(RuleContext& context, OpCall& call) {
  const ChannelFlow& x = call.in.at(0);
  const ChannelFlow weight = call.in.size() > 1 ? call.in[1] : ChannelFlow{};
  if (weight.is_param()) {
    context.layer_for(context.module_of(weight), LayerKind::kLayerNorm);
  }
  if (!x.tracked()) {
    return;
  }
  // LayerNorm takes statistics across the normalized (trailing) dims: a channel there cannot
  // be removed without changing every other one's output.
  const int64_t normalized = weight.is_param() ? context.tensor(weight.tensor).dim() : x.rank();
  if (x.dim >= x.rank() - normalized) {
    context.ids().pin_all(x.channels, "normalized by LayerNorm");
  }
  if (weight.is_param() && x.dim == x.rank() - 1 && normalized == 1) {
    context.record_axis(weight.tensor, 0, x.channels);
    if (const ChannelFlow* bias = param_input(call, 2)) {
      context.record_axis(bias->tensor, 0, x.channels);
    }
  }
  call.out[0] = ChannelFlow::tracked(*x.shape, x.dim, x.channels);
}

void mm(RuleContext& context, OpCall& call) {
  linear(context, call, nullptr, call.in.at(0), call.in.at(1));
}

void addmm(RuleContext& context, OpCall& call) {
  linear(context, call, &call.in.at(0), call.in.at(1), call.in.at(2));
}

}  // namespace demon::detail::rules
