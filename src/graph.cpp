#include "demon/graph.h"

#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "demon/channel_selection.h"
#include "demon/detail/torch_compat.h"
#include "detail/autograd_nodes.h"
#include "detail/module_tree.h"

namespace demon {

using NodePtr = std::shared_ptr<torch::autograd::Node>;
using Shape = std::vector<int64_t>;

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
  }
  return "?";
}

namespace {

int64_t product(const Shape& shape, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < shape.size(); ++i) {
    p *= shape[i];
  }
  return p;
}

std::string shape_string(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    out << (i ? ", " : "") << shape[i];
  }
  out << "]";
  return out.str();
}

// How an op treats channels; chosen from the node's op name.
enum class OpClass {
  kAccumulateGrad,
  kActivation,
  kConv,
  kBatchNorm,
  kGroupNorm,
  kLayerNorm,
  kMm,
  kAddmm,
  kUnaryZeroPreserving,  // per element, f(0) = 0 for the values DemP produces
  kUnary,                // per element
  kBinary,               // per element, broadcasting
  kChannelwise,          // pooling / upsampling / padding over the dims after channels
  kReshape,
  kPermute,
  kReduceOrSelect,
  kExpand,
  kCat,
  kIndexSelect,
  kIndexCopy,
  kCrossChannel,  // known to mix channels (softmax, losses, attention matmuls): pins them
  kUnknown,
};

const std::unordered_map<std::string, OpClass>& op_classes() {
  static const std::unordered_map<std::string, OpClass> table = [] {
    std::unordered_map<std::string, OpClass> t;
    for (const char* n :
         {"Neg", "Clone", "ToCopy", "Alias", "NativeDropout", "Lift", "LiftFresh"}) {
      t[n] = OpClass::kUnaryZeroPreserving;
    }
    for (const char* n :
         {"Elu",        "Selu",  "Celu",       "Softplus",  "Mish",     "Hardswish", "Hardsigmoid",
          "LogSigmoid", "Exp",   "Log",        "Sqrt",      "Rsqrt",    "Erf",       "Sin",
          "Cos",        "Abs",   "Clamp",      "ClampMin",  "ClampMax", "Threshold", "Reciprocal",
          "Square",     "Rrelu", "Softshrink", "Hardshrink"}) {
      t[n] = OpClass::kUnary;
    }
    for (const char* n : {"Add", "Sub", "Mul", "Div", "Rsub", "Maximum", "Minimum", "Pow"}) {
      t[n] = OpClass::kBinary;
    }
    for (const char* n : {"View", "ReshapeAlias", "UnsafeView", "Reshape", "Squeeze", "Unsqueeze",
                          "Flatten", "Unflatten", "ViewAsReal"}) {
      t[n] = OpClass::kReshape;
    }
    for (const char* n : {"Permute", "Transpose", "T"}) {
      t[n] = OpClass::kPermute;
    }
    for (const char* n : {"Mean", "Sum", "Select", "Slice", "Narrow", "Split", "SplitWithSizes",
                          "Unbind", "Amax", "Max"}) {
      t[n] = OpClass::kReduceOrSelect;
    }
    for (const char* n : {"LogSoftmax",
                          "Softmax",
                          "NllLoss",
                          "NllLoss2D",
                          "NllLossNd",
                          "MseLoss",
                          "L1Loss",
                          "SmoothL1Loss",
                          "HuberLoss",
                          "BinaryCrossEntropy",
                          "BinaryCrossEntropyWithLogits",
                          "KlDiv",
                          "SoftMarginLoss",
                          "MultiMarginLoss",
                          "MultilabelMarginLoss",
                          "Bmm",
                          "Baddbmm",
                          "Embedding",
                          "EmbeddingDense",
                          "Cumsum",
                          "Norm",
                          "LinalgVectorNorm",
                          "Var",
                          "Std",
                          "Logsumexp",
                          "Prod",
                          "ScaledDotProductAttention",
                          "ScaledDotProductEfficientAttention",
                          "ScaledDotProductFlashAttention",
                          "Dot",
                          "Mv"}) {
      t[n] = OpClass::kCrossChannel;
    }
    t["AccumulateGrad"] = OpClass::kAccumulateGrad;
    t["Expand"] = OpClass::kExpand;
    t["Cat"] = OpClass::kCat;
    t["IndexSelect"] = OpClass::kIndexSelect;
    t["IndexCopy"] = OpClass::kIndexCopy;
    t["Mm"] = OpClass::kMm;
    t["Addmm"] = OpClass::kAddmm;
    return t;
  }();
  return table;
}

bool contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

OpClass classify(const std::string& op, const std::vector<std::string>& user_elementwise) {
  if (std::find(user_elementwise.begin(), user_elementwise.end(), op) != user_elementwise.end()) {
    return OpClass::kUnary;
  }
  const auto& table = op_classes();
  const auto found = table.find(op);
  if (found != table.end()) {
    return found->second;
  }
  if (contains(op, "BatchNorm"))
    return OpClass::kBatchNorm;
  if (contains(op, "GroupNorm"))
    return OpClass::kGroupNorm;
  if (contains(op, "LayerNorm"))
    return OpClass::kLayerNorm;
  if (contains(op, "Conv") && !contains(op, "Transpose"))
    return OpClass::kConv;
  if (contains(op, "Pool") || contains(op, "Upsample") || contains(op, "Pad")) {
    return OpClass::kChannelwise;
  }
  return OpClass::kUnknown;
}

// What flows along one autograd edge, as far as channels are concerned.
struct Value {
  enum class Kind {
    kExternal,       // no gradient: input data or a constant (shape unknown)
    kData,           // derived from the data
    kParam,          // a parameter of the model (tensor)
    kParamFunction,  // computed from parameters only
  };
  Kind kind = Kind::kExternal;
  std::optional<Shape> shape;
  int64_t dim = -1;              // the tracked channel axis (kData); -1: not tracked
  std::vector<int64_t> ids;      // channel id per index along dim
  std::vector<int32_t> sources;  // activation-source set per index (0: none)
  int tensor = -1;               // kParam
  bool transposed = false;       // kParam seen through t()

  bool tracked() const { return kind == Kind::kData && dim >= 0; }
  bool is_data() const { return kind == Kind::kData; }
  int64_t rank() const { return shape ? static_cast<int64_t>(shape->size()) : -1; }
};

}  // namespace

// Builds a DependencyGraph: walks the autograd graph in forward order, tracks one channel axis
// per value, and unites channel ids that must be removed together.
class GraphBuilder {
 public:
  GraphBuilder(torch::nn::Module& model, const DiscoveryOptions& options) : options_(options) {
    for (const auto& named : detail::named_modules_of(model)) {
      // Named, not a structured binding: the lambda below captures them (C++20 before clang 16).
      const std::string& prefix = named.first;
      const auto& module = named.second;
      module_names_[module.get()] = prefix;
      modules_[module.get()] = module;
      auto add = [&](const std::string& local, const torch::Tensor& tensor, bool is_param) {
        if (!tensor.defined() || tensor_index_.count(tensor.unsafeGetTensorImpl())) {
          return;
        }
        tensor_index_[tensor.unsafeGetTensorImpl()] = static_cast<int>(graph_.tensors_.size());
        tensor_module_.push_back(module.get());
        graph_.tensors_.push_back(
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

  DependencyGraph build(const torch::Tensor& root) {
    if (!root.defined() || !root.grad_fn()) {
      throw std::invalid_argument(
          "demon::DependencyGraph::discover: the root tensor has no autograd graph; run the "
          "forward pass with gradients enabled (not under NoGradGuard) on a model with "
          "trainable parameters");
    }
    const auto nodes = detail::nodes_in_forward_order(root.grad_fn());
    graph_.node_count_ = nodes.size();
    graph_.fingerprint_ = detail::structure_fingerprint(nodes);
    if (options_.batch_size_ > 0) {
      batch_size_ = options_.batch_size_;
    } else if (root.dim() >= 1) {
      batch_size_ = root.size(0);
    }
    for (size_t i = 0; i < nodes.size(); ++i) {
      visit(nodes[i], i);
    }
    const Value* out = value_of(root.grad_fn().get(), root.output_nr());
    if (out != nullptr) {
      pin_value(*out, "model output");
    }
    apply_user_options();
    finalize();
    return std::move(graph_);
  }

 private:
  // ---------------------------------------------------------------- channel ids (union-find)
  int64_t fresh(int64_t count, std::vector<int64_t>* ids) {
    ids->clear();
    for (int64_t i = 0; i < count; ++i) {
      ids->push_back(static_cast<int64_t>(parent_.size()));
      parent_.push_back(static_cast<int64_t>(parent_.size()));
      pin_reason_.emplace_back();
      unobservable_.push_back(false);
      read_sites_.emplace_back();
    }
    return count;
  }
  std::vector<int64_t> fresh(int64_t count) {
    std::vector<int64_t> ids;
    fresh(count, &ids);
    return ids;
  }
  int64_t find(int64_t id) {
    while (parent_[id] != id) {
      parent_[id] = parent_[parent_[id]];
      id = parent_[id];
    }
    return id;
  }
  void unite(int64_t a, int64_t b) {
    a = find(a);
    b = find(b);
    if (a != b) {
      parent_[std::max(a, b)] = std::min(a, b);
    }
  }
  void unite_all(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
    for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
      unite(a[i], b[i]);
    }
  }
  void pin(int64_t id, const std::string& reason) {
    if (pin_reason_[id].empty()) {
      pin_reason_[id] = reason;
    }
  }
  void pin_all(const std::vector<int64_t>& ids, const std::string& reason) {
    for (auto id : ids) {
      pin(id, reason);
    }
  }
  std::vector<int64_t> pinned_fresh(int64_t count, const std::string& reason) {
    auto ids = fresh(count);
    pin_all(ids, reason);
    return ids;
  }

  // ---------------------------------------------------------------- activation sources
  int32_t intern_sources(std::vector<int32_t> sites) {
    std::sort(sites.begin(), sites.end());
    sites.erase(std::unique(sites.begin(), sites.end()), sites.end());
    if (sites.empty()) {
      return 0;
    }
    auto [it, inserted] = source_index_.emplace(sites, static_cast<int32_t>(source_sets_.size()));
    if (inserted) {
      source_sets_.push_back(sites);
    }
    return it->second;
  }
  int32_t merge_sources(int32_t a, int32_t b) {
    if (a == 0)
      return b;
    if (b == 0 || a == b)
      return a;
    auto merged = source_sets_[a];
    merged.insert(merged.end(), source_sets_[b].begin(), source_sets_[b].end());
    return intern_sources(merged);
  }

  // A linear consumer (conv / linear / selection) reads these channels: they can only be proven
  // removable if each read value is zero, i.e. comes from activation outputs.
  void record_read(const Value& value, const std::vector<bool>* only = nullptr) {
    for (size_t i = 0; i < value.ids.size(); ++i) {
      if (only != nullptr && !(*only)[i]) {
        continue;
      }
      const int32_t set = value.sources.empty() ? 0 : value.sources[i];
      if (set == 0) {
        unobservable_[value.ids[i]] = true;
      } else {
        auto& reads = read_sites_[value.ids[i]];
        reads.insert(reads.end(), source_sets_[set].begin(), source_sets_[set].end());
      }
    }
  }

  // ---------------------------------------------------------------- axes
  // Records that index i of (tensor, dim) belongs to channel ids[i]; a second recording of the
  // same axis (a module used twice, tied weights) unites the channels.
  void record_axis(int tensor, int64_t dim, const std::vector<int64_t>& ids) {
    record_axis_key({tensor, -1, dim}, ids);
  }
  void record_virtual_axis(int layer, int64_t side, const std::vector<int64_t>& ids) {
    record_axis_key({-1, layer, side}, ids);
  }
  void record_axis_key(const std::tuple<int, int, int64_t>& key, const std::vector<int64_t>& ids) {
    auto found = axis_raw_.find(key);
    if (found == axis_raw_.end()) {
      axis_order_.push_back(key);
      axis_raw_[key] = ids;
      return;
    }
    if (found->second.size() != ids.size()) {
      // Different sizes cannot be the same channels: keep both sets unprunable.
      pin_all(found->second, "axis recorded with two different sizes");
      pin_all(ids, "axis recorded with two different sizes");
      return;
    }
    unite_all(found->second, ids);
  }

  // ---------------------------------------------------------------- layers
  int layer_for(torch::nn::Module* module, LayerKind kind) {
    auto found = layer_index_.find(module);
    if (found != layer_index_.end()) {
      return found->second;
    }
    const int index = static_cast<int>(graph_.layers_.size());
    layer_index_[module] = index;
    graph_.layers_.push_back({module_names_[module], kind, modules_[module], 0, -1});
    for (size_t t = 0; t < graph_.tensors_.size(); ++t) {
      if (tensor_module_[t] == module) {
        graph_.tensors_[t].layer = index;
      }
    }
    return index;
  }
  torch::nn::Module* module_of_tensor(int tensor) const {
    return tensor >= 0 ? tensor_module_[tensor] : nullptr;
  }
  int buffer_of(torch::nn::Module* module, const std::string& local) const {
    const std::string& prefix = module_names_.at(module);
    return graph_.find_tensor(prefix.empty() ? local : prefix + "." + local);
  }

  // ---------------------------------------------------------------- values
  const Value* value_of(const torch::autograd::Node* node, uint32_t output_nr) const {
    auto found = values_.find(node);
    if (found == values_.end() || output_nr >= found->second.size()) {
      return nullptr;
    }
    return &found->second[output_nr];
  }
  Value input_value(const torch::autograd::Edge& edge) const {
    if (!edge.is_valid()) {
      return Value{};
    }
    const Value* v = value_of(edge.function.get(), edge.input_nr);
    return v != nullptr ? *v : Value{};
  }
  static Value tracked(Shape shape, int64_t dim, std::vector<int64_t> ids,
                       std::vector<int32_t> sources) {
    Value v;
    v.kind = Value::Kind::kData;
    v.shape = std::move(shape);
    v.dim = dim;
    v.ids = std::move(ids);
    v.sources = std::move(sources);
    if (v.sources.size() != v.ids.size()) {
      v.sources.assign(v.ids.size(), 0);
    }
    return v;
  }
  static Value opaque(const std::optional<Shape>& shape) {
    Value v;
    v.kind = Value::Kind::kData;
    v.shape = shape;
    return v;
  }

  void pin_value(const Value& v, const std::string& reason) {
    if (v.tracked()) {
      pin_all(v.ids, reason);
    } else if (v.kind == Value::Kind::kParam) {
      pinned_tensors_.emplace(v.tensor, reason);
    }
  }

  // ---------------------------------------------------------------- the walk
  void visit(const NodePtr& node, size_t order) {
    const std::string op = detail::op_name(*node);
    std::vector<Value> inputs;
    for (const auto& edge : node->next_edges()) {
      inputs.push_back(input_value(edge));
    }
    std::vector<Value> outputs(node->num_inputs());
    for (uint32_t i = 0; i < outputs.size(); ++i) {
      outputs[i] = opaque(detail::output_shape(*node, i));
    }
    current_op_ = op;
    OpClass cls = classify(op, options_.elementwise_ops);
    if (auto kind = detail::activation_kind(*node)) {
      cls = OpClass::kActivation;
      activation_kind_ = *kind;
    }
    // Data enters through edges without gradient (the input batch) or flows from earlier ops.
    const bool any_data = std::any_of(inputs.begin(), inputs.end(), [](const Value& v) {
      return v.is_data() || v.kind == Value::Kind::kExternal;
    });
    if (cls != OpClass::kAccumulateGrad && !any_data) {
      // Computed from parameters and constants only (weight transforms, penalties on weights):
      // not part of the data flow. A transpose of one parameter is remembered for Linear.
      const bool any_param = std::any_of(inputs.begin(), inputs.end(), [](const Value& v) {
        return v.kind == Value::Kind::kParam || v.kind == Value::Kind::kParamFunction;
      });
      for (auto& out : outputs) {
        out.kind = any_param ? Value::Kind::kParamFunction : Value::Kind::kExternal;
      }
      if (op == "T" && inputs.size() == 1 && inputs[0].kind == Value::Kind::kParam &&
          !inputs[0].transposed && outputs.size() == 1) {
        outputs[0] = inputs[0];
        outputs[0].transposed = true;
      }
      // A dtype cast or copy of one parameter (autocast casts weights to bf16/fp16) is still
      // that parameter, shape and all.
      if ((op == "ToCopy" || op == "Clone" || op == "Alias") && inputs.size() == 1 &&
          inputs[0].kind == Value::Kind::kParam && outputs.size() == 1) {
        outputs[0] = inputs[0];
      }
      values_[node.get()] = std::move(outputs);
      return;
    }
    // The batch size, for per-sample FLOPs: the leading dim of the earliest data op's output.
    if (batch_size_ <= 0 && cls != OpClass::kAccumulateGrad && !outputs.empty() &&
        outputs[0].shape && !outputs[0].shape->empty()) {
      batch_size_ = outputs[0].shape->front();
    }
    switch (cls) {
      case OpClass::kAccumulateGrad:
        on_accumulate_grad(*node, outputs);
        break;
      case OpClass::kActivation:
        on_activation(inputs, outputs, order);
        break;
      case OpClass::kConv:
        on_conv(inputs, outputs);
        break;
      case OpClass::kBatchNorm:
        on_batch_norm(inputs, outputs);
        break;
      case OpClass::kGroupNorm:
        on_group_norm(inputs, outputs);
        break;
      case OpClass::kLayerNorm:
        on_layer_norm(inputs, outputs);
        break;
      case OpClass::kMm:
        on_linear(nullptr, inputs.at(0), inputs.at(1), outputs);
        break;
      case OpClass::kAddmm:
        on_linear(&inputs.at(0), inputs.at(1), inputs.at(2), outputs);
        break;
      case OpClass::kUnaryZeroPreserving:
      case OpClass::kUnary:
        on_unary(inputs, outputs, cls == OpClass::kUnaryZeroPreserving);
        break;
      case OpClass::kBinary:
        on_binary(*node, op, inputs, outputs);
        break;
      case OpClass::kChannelwise:
        on_channelwise(op, inputs, outputs);
        break;
      case OpClass::kReshape:
        on_reshape(inputs, outputs);
        break;
      case OpClass::kPermute:
        on_permute(*node, inputs, outputs);
        break;
      case OpClass::kReduceOrSelect:
        on_reduce_or_select(node.get(), inputs, outputs);
        break;
      case OpClass::kExpand:
        on_expand(inputs, outputs);
        break;
      case OpClass::kCat:
        on_cat(inputs, outputs);
        break;
      case OpClass::kIndexSelect:
        on_index_select(*node, inputs, outputs);
        break;
      case OpClass::kIndexCopy:
        on_index_copy(*node, inputs, outputs);
        break;
      case OpClass::kCrossChannel:
        pin_inputs(inputs, op + " mixes channels");
        break;
      case OpClass::kUnknown:
        unknown(inputs);
        break;
    }
    values_[node.get()] = std::move(outputs);
  }

  void pin_inputs(const std::vector<Value>& inputs, const std::string& reason) {
    for (const auto& v : inputs) {
      pin_value(v, reason);
    }
  }
  // An op the walker does not know: counted in unknown_ops(), its channels unprunable.
  void unknown(const std::vector<Value>& inputs) {
    ++graph_.unknown_ops_[current_op_];
    pin_inputs(inputs, "unknown op " + current_op_);
  }
  // A known op used in a way the walker cannot follow: its channels unprunable, with a reason.
  void give_up(const std::vector<Value>& inputs, const std::string& reason) {
    pin_inputs(inputs, reason);
  }

  void on_accumulate_grad(const torch::autograd::Node& node, std::vector<Value>& outputs) {
    const auto* accumulate = dynamic_cast<const torch::autograd::AccumulateGrad*>(&node);
    outputs.assign(1, Value{});
    if (accumulate == nullptr) {
      return;
    }
    const auto found = tensor_index_.find(accumulate->variable.unsafeGetTensorImpl());
    if (found != tensor_index_.end()) {
      outputs[0].kind = Value::Kind::kParam;
      outputs[0].tensor = found->second;
      outputs[0].shape = accumulate->variable.sizes().vec();
    } else {
      outputs[0] = opaque(accumulate->variable.sizes().vec());  // a leaf that is not the model's
    }
  }

  void on_activation(const std::vector<Value>& inputs, std::vector<Value>& outputs, size_t order) {
    const Value& in = inputs.at(0);
    if (!in.tracked()) {
      return;
    }
    const int site = static_cast<int>(site_ids_.size());
    site_ids_.push_back(in.ids);
    graph_.sites_.push_back({activation_kind_, order, in.dim, {}});
    const int32_t set = intern_sources({site});
    outputs[0] = tracked(*in.shape, in.dim, in.ids, std::vector<int32_t>(in.ids.size(), set));
  }

  // The ids of `v` along `dim` for a consumer that slices that axis; fresh pinned ids if `v` is
  // not tracked there (and `v`'s own channels, lost here, are pinned).
  std::vector<int64_t> ids_along(const Value& v, int64_t dim, int64_t size,
                                 const std::string& reason) {
    if (v.tracked() && v.dim == dim && static_cast<int64_t>(v.ids.size()) == size) {
      return v.ids;
    }
    pin_value(v, reason);
    return pinned_fresh(size, reason);
  }

  void on_conv(const std::vector<Value>& inputs, std::vector<Value>& outputs) {
    const Value& x = inputs.at(0);
    const Value weight = inputs.size() > 1 ? inputs[1] : Value{};
    auto* module = module_of_tensor(weight.kind == Value::Kind::kParam ? weight.tensor : -1);
    auto* conv1 = dynamic_cast<torch::nn::Conv1dImpl*>(module);
    auto* conv2 = dynamic_cast<torch::nn::Conv2dImpl*>(module);
    auto* conv3 = dynamic_cast<torch::nn::Conv3dImpl*>(module);
    if ((conv1 == nullptr && conv2 == nullptr && conv3 == nullptr) || !outputs[0].shape ||
        outputs[0].shape->size() < 3 ||
        (x.tracked() && x.rank() != static_cast<int64_t>(outputs[0].shape->size()))) {
      give_up(inputs, "convolution the engine cannot map to a Conv1d/2d/3d module");
      return;
    }
    const int64_t groups = conv1   ? conv1->options.groups()
                           : conv2 ? conv2->options.groups()
                                   : conv3->options.groups();
    const Shape& out_shape = *outputs[0].shape;
    const Shape& w_shape = graph_.tensors_[weight.tensor].tensor.sizes().vec();
    const int64_t out_channels = out_shape[1];
    const int64_t in_channels = w_shape[1] * groups;
    const int layer = layer_for(module, LayerKind::kConv);
    graph_.layers_[layer].weight = weight.tensor;
    graph_.layers_[layer].outputs_per_sample = product(out_shape, 2, out_shape.size());

    const auto in_ids =
        ids_along(x, 1, in_channels,
                  x.is_data() ? "input of " + graph_.layers_[layer].name : "network input");
    const auto out_ids = fresh(out_channels);
    record_axis(weight.tensor, 0, out_ids);
    if (inputs.size() > 2 && inputs[2].kind == Value::Kind::kParam) {
      record_axis(inputs[2].tensor, 0, out_ids);
    }
    if (groups == 1) {
      record_axis(weight.tensor, 1, in_ids);
      if (x.tracked())
        record_read(x);
    } else {
      // A grouped (or depthwise) convolution: group g's outputs read only group g's inputs, so
      // the two go together, a whole group at a time.
      const int64_t in_per_group = in_channels / groups;
      const int64_t out_per_group = out_channels / groups;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t anchor = out_ids[g * out_per_group];
        for (int64_t k = 0; k < out_per_group; ++k)
          unite(anchor, out_ids[g * out_per_group + k]);
        for (int64_t k = 0; k < in_per_group; ++k)
          unite(anchor, in_ids[g * in_per_group + k]);
      }
    }
    outputs[0] = tracked(out_shape, 1, out_ids, {});
  }

  void on_batch_norm(const std::vector<Value>& inputs, std::vector<Value>& outputs) {
    const Value& x = inputs.at(0);
    const Value weight = inputs.size() > 1 ? inputs[1] : Value{};
    torch::nn::Module* module =
        module_of_tensor(weight.kind == Value::Kind::kParam ? weight.tensor : -1);
    const bool known = dynamic_cast<torch::nn::BatchNorm1dImpl*>(module) ||
                       dynamic_cast<torch::nn::BatchNorm2dImpl*>(module) ||
                       dynamic_cast<torch::nn::BatchNorm3dImpl*>(module);
    if (!known || !x.tracked() || x.dim != 1) {
      pin_inputs(inputs, known ? "BatchNorm over an untracked channel axis"
                               : "BatchNorm without affine parameters (cannot map to a module)");
      return;
    }
    layer_for(module, LayerKind::kBatchNorm);
    record_axis(weight.tensor, 0, x.ids);
    if (inputs.size() > 2 && inputs[2].kind == Value::Kind::kParam) {
      record_axis(inputs[2].tensor, 0, x.ids);
    }
    for (const char* buffer : {"running_mean", "running_var"}) {
      const int t = buffer_of(module, buffer);
      if (t >= 0 && graph_.tensors_[t].tensor.defined()) {
        record_axis(t, 0, x.ids);
      }
    }
    outputs[0] = tracked(*x.shape, 1, x.ids, {});
  }

  void on_group_norm(const std::vector<Value>& inputs, std::vector<Value>& outputs) {
    const Value& x = inputs.at(0);
    const Value weight = inputs.size() > 1 ? inputs[1] : Value{};
    auto* gn = dynamic_cast<torch::nn::GroupNormImpl*>(
        module_of_tensor(weight.kind == Value::Kind::kParam ? weight.tensor : -1));
    if (gn == nullptr || !x.tracked() || x.dim != 1) {
      pin_inputs(inputs, "GroupNorm without affine parameters (cannot map to a module)");
      return;
    }
    layer_for(gn, LayerKind::kGroupNorm);
    // Statistics are per group: removing a whole group changes no other group, removing part of
    // one would. So a group's channels form one unit.
    const int64_t groups = gn->options.num_groups();
    const int64_t per_group = static_cast<int64_t>(x.ids.size()) / groups;
    for (int64_t g = 0; g < groups; ++g) {
      for (int64_t k = 1; k < per_group; ++k) {
        unite(x.ids[g * per_group], x.ids[g * per_group + k]);
      }
    }
    record_axis(weight.tensor, 0, x.ids);
    if (inputs.size() > 2 && inputs[2].kind == Value::Kind::kParam) {
      record_axis(inputs[2].tensor, 0, x.ids);
    }
    outputs[0] = tracked(*x.shape, 1, x.ids, {});
  }

  void on_layer_norm(const std::vector<Value>& inputs, std::vector<Value>& outputs) {
    const Value& x = inputs.at(0);
    const Value weight = inputs.size() > 1 ? inputs[1] : Value{};
    if (weight.kind == Value::Kind::kParam) {
      layer_for(module_of_tensor(weight.tensor), LayerKind::kLayerNorm);
    }
    if (!x.tracked()) {
      return;
    }
    // LayerNorm takes statistics across the normalized (trailing) dims: a channel there cannot
    // be removed without changing every other one's output.
    const int64_t normalized =
        weight.kind == Value::Kind::kParam ? graph_.tensors_[weight.tensor].tensor.dim() : x.rank();
    if (x.dim >= x.rank() - normalized) {
      pin_all(x.ids, "normalized by LayerNorm");
    }
    if (weight.kind == Value::Kind::kParam && x.dim == x.rank() - 1 && normalized == 1) {
      record_axis(weight.tensor, 0, x.ids);
      if (inputs.size() > 2 && inputs[2].kind == Value::Kind::kParam) {
        record_axis(inputs[2].tensor, 0, x.ids);
      }
    }
    outputs[0] = tracked(*x.shape, x.dim, x.ids, {});
  }

  void on_linear(const Value* bias, const Value& x, const Value& weight_t,
                 std::vector<Value>& outputs) {
    auto* linear = dynamic_cast<torch::nn::LinearImpl*>(
        module_of_tensor(weight_t.kind == Value::Kind::kParam ? weight_t.tensor : -1));
    const auto& out_shape = outputs[0].shape;
    if (linear == nullptr || !weight_t.transposed || !out_shape || out_shape->size() != 2 ||
        (x.tracked() && x.rank() != 2)) {
      // A product of two activations (attention) or of a non-Linear weight.
      pin_inputs({bias ? *bias : Value{}, x, weight_t},
                 "matrix product that is not a Linear layer");
      return;
    }
    const int layer = layer_for(linear, LayerKind::kLinear);
    graph_.layers_[layer].weight = weight_t.tensor;
    linear_rows_[layer] = (*out_shape)[0];  // per sample once the batch size is known
    const int64_t in_features = graph_.tensors_[weight_t.tensor].tensor.size(1);
    const auto in_ids =
        ids_along(x, 1, in_features,
                  x.is_data() ? "input of " + graph_.layers_[layer].name : "network input");
    const auto out_ids = fresh((*out_shape)[1]);
    record_axis(weight_t.tensor, 0, out_ids);
    record_axis(weight_t.tensor, 1, in_ids);
    if (x.tracked() && x.dim == 1) {
      record_read(x);
    }
    if (bias != nullptr && bias->kind == Value::Kind::kParam) {
      record_axis(bias->tensor, 0, out_ids);
    } else if (bias != nullptr) {
      pin_all(out_ids, "Linear bias the engine cannot slice");
    }
    outputs[0] = tracked(*out_shape, 1, out_ids, {});
  }

  void on_unary(const std::vector<Value>& inputs, std::vector<Value>& outputs,
                bool zero_preserving) {
    const Value& in = inputs.at(0);
    if (!in.tracked()) {
      return;
    }
    if (!outputs[0].shape || *outputs[0].shape != *in.shape) {
      give_up(inputs, current_op_ + " changed the shape");
      return;
    }
    outputs[0] =
        tracked(*in.shape, in.dim, in.ids, zero_preserving ? in.sources : std::vector<int32_t>{});
  }

  // Per-element ops over broadcast operands (add, mul, ...).
  void on_binary(const torch::autograd::Node& node, const std::string& op,
                 const std::vector<Value>& inputs, std::vector<Value>& outputs) {
    const bool scales = op == "Mul" || op == "Div";
    if (inputs.size() == 1) {  // tensor ⊙ scalar
      on_unary(inputs, outputs, scales);
      return;
    }
    if (!outputs[0].shape) {
      give_up(inputs, op + " with an unknown output shape");
      return;
    }
    const Shape& out_shape = *outputs[0].shape;
    const int64_t rank = static_cast<int64_t>(out_shape.size());
    // The channel axis of the output: that of the first tracked operand of full size.
    int64_t dim = -1;
    const Value* lead = nullptr;
    for (const auto& v : inputs) {
      if (v.tracked()) {
        const int64_t d = v.dim + rank - v.rank();
        if (static_cast<int64_t>(v.ids.size()) == out_shape[d] && (out_shape[d] > 1 || !lead)) {
          dim = d;
          lead = &v;
          break;
        }
      }
    }
    if (lead == nullptr) {
      pin_inputs(inputs, op + " broadcasts channels");
      return;
    }
    const int64_t channels = out_shape[dim];
    const std::string cannot_slice = op + " with a per-channel operand the engine cannot slice";
    bool only_tracked_operands = true;  // every operand is a tracked data value, united here
    std::vector<int32_t> sources(lead->ids.size(), 0);
    for (size_t k = 0; k < inputs.size(); ++k) {
      const Value& v = inputs[k];
      // Where this operand sits under the output's channel axis (right-aligned broadcast).
      std::optional<Shape> shape = v.shape;
      if (v.kind == Value::Kind::kExternal && op == "Mul") {
        const torch::Tensor constant =
            detail::mul_constant_operand(node, /*constant_is_other=*/k == 1);
        if (constant.defined()) {
          shape = constant.sizes().vec();
          const auto buffer = tensor_index_.find(constant.unsafeGetTensorImpl());
          if (buffer != tensor_index_.end()) {
            const int64_t d = dim - (rank - static_cast<int64_t>(shape->size()));
            if (d >= 0 && (*shape)[d] == channels && channels > 1) {
              record_axis(buffer->second, d, lead->ids);  // a per-channel buffer: sliced too
              continue;
            }
          }
        }
      }
      if (v.tracked()) {
        const int64_t d = v.dim + rank - v.rank();
        if (d == dim && static_cast<int64_t>(v.ids.size()) == channels) {
          unite_all(lead->ids, v.ids);
          for (size_t i = 0; i < sources.size(); ++i) {
            sources[i] = merge_sources(sources[i], v.sources[i]);
          }
          continue;
        }
        pin_all(v.ids, op + " over misaligned channel axes");
        pin_all(lead->ids, op + " over misaligned channel axes");
        only_tracked_operands = false;
        continue;
      }
      only_tracked_operands = false;
      if (!shape) {
        pin_all(lead->ids, op + " with an operand of unknown shape");
        continue;
      }
      const int64_t d = dim - (rank - static_cast<int64_t>(shape->size()));
      const int64_t size_here = d >= 0 ? (*shape)[d] : 1;
      if (size_here == 1 && channels > 1) {
        continue;  // broadcast along channels: no per-channel interaction
      }
      // A fresh random mask over the whole batch (dropout) holds no per-channel state.
      const bool transient_mask = v.kind == Value::Kind::kExternal &&
                                  shape->size() == out_shape.size() && out_shape.size() > 1 &&
                                  (*shape)[0] == out_shape[0];
      if (v.kind == Value::Kind::kParam && !v.transposed) {
        record_axis(v.tensor, d, lead->ids);  // per-channel parameter (bias, scale)
      } else if (!transient_mask) {
        pin_all(lead->ids, cannot_slice);
      }
    }
    // Zero-preservation: a sum of zeros is zero; a product is zero when one factor is; a
    // quotient when its numerator is. Anything else (bias, max) may not be.
    bool keep = false;
    if (op == "Add" || op == "Sub") {
      keep = only_tracked_operands;
    } else if (op == "Mul") {
      keep = true;
    } else if (op == "Div") {
      keep = inputs[0].tracked() && !inputs[1].tracked();
      if (keep)
        sources = inputs[0].sources;
    }
    outputs[0] = tracked(out_shape, dim, lead->ids, keep ? sources : std::vector<int32_t>{});
  }

  // Pooling, upsampling, padding: per channel over the dims after it.
  void on_channelwise(const std::string& op, const std::vector<Value>& inputs,
                      std::vector<Value>& outputs) {
    const Value& in = inputs.at(0);
    if (!in.tracked()) {
      return;
    }
    const auto& out_shape = outputs[0].shape;
    if (in.dim != 1 || !out_shape || static_cast<int64_t>(out_shape->size()) != in.rank() ||
        (*out_shape)[1] != static_cast<int64_t>(in.ids.size())) {
      give_up(inputs, op + " over the channel axis");
      return;
    }
    const bool zero_preserving = !contains(op, "Pad");
    outputs[0] =
        tracked(*out_shape, 1, in.ids, zero_preserving ? in.sources : std::vector<int32_t>{});
  }

  // Row-major reshapes: the channel axis survives if its flat extent maps onto output dims.
  void on_reshape(const std::vector<Value>& inputs, std::vector<Value>& outputs) {
    const Value& in = inputs.at(0);
    if (!in.tracked()) {
      return;
    }
    const auto& out = outputs[0].shape;
    if (!out) {
      give_up(inputs, "reshape to an unknown shape");
      return;
    }
    const Shape& s = *in.shape;
    const Shape& o = *out;
    const int64_t d = in.dim;
    const int64_t before = product(s, 0, d);
    const int64_t c = s[d];
    for (size_t k = 0; k < o.size(); ++k) {
      if (product(o, 0, k) != before) {
        continue;
      }
      if (o[k] == c) {  // the channel axis itself, unchanged
        outputs[0] = tracked(o, static_cast<int64_t>(k), in.ids, in.sources);
        return;
      }
      if (o[k] > c && o[k] % c == 0) {  // merged with following dims (flatten)
        const int64_t m = o[k] / c;
        bool matches = false;
        for (size_t e = d + 1; e <= s.size(); ++e) {
          matches = matches || product(s, d + 1, e) == m;
        }
        if (matches) {
          std::vector<int64_t> ids;
          std::vector<int32_t> sources;
          for (size_t i = 0; i < in.ids.size(); ++i) {
            ids.insert(ids.end(), m, in.ids[i]);
            sources.insert(sources.end(), m, in.sources[i]);
          }
          outputs[0] = tracked(o, static_cast<int64_t>(k), ids, sources);
          return;
        }
      }
      if (o[k] < c && c % o[k] == 0) {  // split back (unflatten): blocks must be one channel each
        const int64_t m = c / o[k];
        bool matches = false;
        for (size_t e = k + 1; e <= o.size(); ++e) {
          matches = matches || product(o, k + 1, e) == m;
        }
        if (matches) {
          std::vector<int64_t> ids;
          std::vector<int32_t> sources;
          bool uniform = true;
          for (int64_t j = 0; j < o[k]; ++j) {
            for (int64_t r = 1; r < m; ++r) {
              uniform = uniform && in.ids[j * m + r] == in.ids[j * m];
            }
            ids.push_back(in.ids[j * m]);
            sources.push_back(in.sources[j * m]);
          }
          if (uniform) {
            outputs[0] = tracked(o, static_cast<int64_t>(k), ids, sources);
            return;
          }
        }
      }
    }
    give_up(inputs, "reshape that splits or mixes the channel axis " + shape_string(s) + " -> " +
                        shape_string(o));
  }

  void on_permute(const torch::autograd::Node& node, const std::vector<Value>& inputs,
                  std::vector<Value>& outputs) {
    const Value& in = inputs.at(0);
    if (!in.tracked()) {
      return;
    }
    const auto& out = outputs[0].shape;
    const int64_t c = static_cast<int64_t>(in.ids.size());
    std::vector<int64_t> candidates;
    const auto perm = detail::permutation(node, in.rank());
    if (out && static_cast<int64_t>(out->size()) == in.rank() && perm) {
      // The node says where each dim went: no guessing from sizes.
      for (size_t k = 0; k < perm->size(); ++k) {
        if ((*perm)[k] == in.dim && (*out)[k] == c)
          candidates.push_back(static_cast<int64_t>(k));
      }
    } else if (out && static_cast<int64_t>(out->size()) == in.rank()) {
      if (current_op_ == "T" && in.rank() == 2) {
        candidates.push_back(1 - in.dim);
      } else {
        for (size_t k = 0; k < out->size(); ++k) {
          if ((*out)[k] == c)
            candidates.push_back(static_cast<int64_t>(k));
        }
      }
    }
    if (candidates.size() != 1) {
      give_up(inputs, "permutation the engine cannot follow (equal dim sizes)");
      return;
    }
    outputs[0] = tracked(*out, candidates[0], in.ids, in.sources);
  }

  // Reductions with dims, select, slice, split: the channel axis must come through unchanged.
  // Where the node saved its reduced dims (mean, sum, amax) they say where it goes; otherwise
  // it is inferred from the shapes, which equal sizes can make ambiguous.
  void on_reduce_or_select(const torch::autograd::Node* node, const std::vector<Value>& inputs,
                           std::vector<Value>& outputs) {
    const Value& in = inputs.at(0);
    if (!in.tracked()) {
      return;
    }
    const int64_t c = static_cast<int64_t>(in.ids.size());
    const Shape& s = *in.shape;
    if (const auto reduced = node ? detail::reduced_dims(*node) : std::nullopt) {
      std::set<int64_t> removed;
      for (int64_t d : reduced->dims)
        removed.insert(d < 0 ? d + in.rank() : d);
      if (removed.count(in.dim)) {
        give_up(inputs, current_op_ + " over the channel axis");
        return;
      }
      int64_t position = in.dim;
      if (!reduced->keepdim) {
        for (int64_t d : removed)
          position -= d < in.dim ? 1 : 0;
      }
      const auto& o = outputs.at(0).shape;
      if (outputs.size() != 1 || !o || position >= static_cast<int64_t>(o->size()) ||
          (*o)[position] != c) {
        give_up(inputs, current_op_ + " whose saved dims do not match its output");
        return;
      }
      outputs[0] = tracked(*o, position, in.ids, in.sources);
      return;
    }
    for (auto& output : outputs) {
      if (!output.shape) {
        give_up(inputs, current_op_ + " with an unknown output shape");
        return;
      }
      const Shape& o = *output.shape;
      std::set<int64_t> positions;  // where the channel axis can have gone; -1: removed
      if (o.size() == s.size()) {
        positions.insert(o[in.dim] == c ? in.dim : -1);
      } else if (o.size() < s.size()) {
        // Try every set of removed dims whose removal leaves exactly the output shape.
        const size_t n = s.size();
        for (uint32_t mask = 0; mask < (1u << n); ++mask) {
          if (static_cast<size_t>(__builtin_popcount(mask)) != n - o.size())
            continue;
          Shape kept;
          int64_t pos = -1;
          for (size_t i = 0; i < n; ++i) {
            if (!(mask & (1u << i))) {
              if (static_cast<int64_t>(i) == in.dim)
                pos = static_cast<int64_t>(kept.size());
              kept.push_back(s[i]);
            }
          }
          if (kept == o)
            positions.insert(pos);
        }
      }
      if (positions.size() != 1 || *positions.begin() < 0) {
        give_up(inputs, positions.size() > 1 ? current_op_ + " with ambiguous dims"
                                             : current_op_ + " over the channel axis");
        return;
      }
      output = tracked(o, *positions.begin(), in.ids, in.sources);
    }
  }

  void on_expand(const std::vector<Value>& inputs, std::vector<Value>& outputs) {
    const Value& in = inputs.at(0);
    if (!in.tracked()) {
      return;
    }
    const auto& out = outputs[0].shape;
    const int64_t d = out ? in.dim + static_cast<int64_t>(out->size()) - in.rank() : -1;
    if (!out || d < 0 || (*out)[d] != static_cast<int64_t>(in.ids.size())) {
      give_up(inputs, "expand of the channel axis");
      return;
    }
    outputs[0] = tracked(*out, d, in.ids, in.sources);
  }

  void on_cat(const std::vector<Value>& inputs, std::vector<Value>& outputs) {
    const auto& out = outputs[0].shape;
    const Value* first = nullptr;
    for (const auto& v : inputs) {
      if (v.tracked()) {
        first = &v;
        break;
      }
    }
    if (!out || first == nullptr || first->rank() != static_cast<int64_t>(out->size())) {
      give_up(inputs, "concatenation the engine cannot follow");
      return;
    }
    const Shape& o = *out;
    // The concatenation dim: where the known input sizes differ from the output's.
    int64_t cat_dim = -1;
    for (const auto& v : inputs) {
      if (!v.shape || v.shape->size() != o.size())
        continue;
      for (size_t k = 0; k < o.size(); ++k) {
        if ((*v.shape)[k] != o[k])
          cat_dim = static_cast<int64_t>(k);
      }
    }
    const int64_t c_dim = first->dim;
    if (inputs.size() == 1) {  // identity
      outputs[0] = *first;
      outputs[0].shape = o;
      return;
    }
    if (cat_dim < 0) {
      give_up(inputs, "concatenation along an undeterminable dim");
      return;
    }
    if (cat_dim == c_dim) {
      // Channels side by side: each input keeps its own channels, at an offset.
      std::vector<int64_t> ids;
      std::vector<int32_t> sources;
      int64_t known = 0;
      int unknown_count = 0;
      for (const auto& v : inputs) {
        if (v.shape)
          known += (*v.shape)[c_dim];
        else
          ++unknown_count;
      }
      for (const auto& v : inputs) {
        if (v.tracked() && v.dim == c_dim) {
          ids.insert(ids.end(), v.ids.begin(), v.ids.end());
          sources.insert(sources.end(), v.sources.begin(), v.sources.end());
          continue;
        }
        pin_value(v, "concatenated with channels the engine cannot follow");
        int64_t size = v.shape ? (*v.shape)[c_dim] : (unknown_count == 1 ? o[c_dim] - known : -1);
        if (size < 0) {
          give_up(inputs, "concatenation with an operand of unknown shape");
          return;
        }
        auto pinned = pinned_fresh(size, "concatenated with channels the engine cannot follow");
        ids.insert(ids.end(), pinned.begin(), pinned.end());
        sources.insert(sources.end(), size, 0);
      }
      if (static_cast<int64_t>(ids.size()) != o[c_dim]) {
        give_up(inputs, "concatenation whose sizes do not add up");
        return;
      }
      outputs[0] = tracked(o, c_dim, ids, sources);
      return;
    }
    // Along another dim: every input carries the same channels.
    std::vector<int32_t> sources = first->sources;
    for (const auto& v : inputs) {
      if (v.tracked() && v.dim == c_dim && v.ids.size() == first->ids.size()) {
        unite_all(first->ids, v.ids);
        for (size_t i = 0; i < sources.size(); ++i)
          sources[i] = merge_sources(sources[i], v.sources[i]);
      } else {
        pin_value(v, "concatenated with channels the engine cannot follow");
        pin_all(first->ids, "concatenated with channels the engine cannot follow");
      }
    }
    outputs[0] = tracked(o, c_dim, first->ids, sources);
  }

  // ChannelSelection: index_select(1, source) [then zeros.index_copy(1, target, ·)].
  ChannelSelectionImpl* selection_with(const torch::Tensor& index, bool source) {
    if (!index.defined())
      return nullptr;
    const auto found = tensor_index_.find(index.unsafeGetTensorImpl());
    if (found == tensor_index_.end())
      return nullptr;
    auto* selection = dynamic_cast<ChannelSelectionImpl*>(module_of_tensor(found->second));
    if (selection == nullptr)
      return nullptr;
    const auto& expected = source ? selection->source : selection->target;
    return expected.unsafeGetTensorImpl() == index.unsafeGetTensorImpl() ? selection : nullptr;
  }

  const std::vector<int64_t>& selection_outputs(ChannelSelectionImpl* selection) {
    auto found = selection_outputs_.find(selection);
    if (found == selection_outputs_.end()) {
      const int layer = layer_for(selection, LayerKind::kChannelSelection);
      auto ids = fresh(selection->out_channels());
      record_virtual_axis(layer, 1, ids);
      found = selection_outputs_.emplace(selection, std::move(ids)).first;
    }
    return found->second;
  }

  void on_index_select(const torch::autograd::Node& node, const std::vector<Value>& inputs,
                       std::vector<Value>& outputs) {
    const Value& x = inputs.at(0);
    const torch::Tensor index = detail::saved_index(node);
    if (auto* selection = selection_with(index, /*source=*/true)) {
      const int layer = layer_for(selection, LayerKind::kChannelSelection);
      const auto in_ids =
          ids_along(x, 1, selection->in_channels(), "input of " + graph_.layers_[layer].name);
      record_virtual_axis(layer, 0, in_ids);
      const auto source = selection->source.to(torch::kCPU).contiguous();
      const auto target = selection->target.to(torch::kCPU).contiguous();
      std::vector<bool> read(in_ids.size(), false);
      for (int64_t k = 0; k < source.numel(); ++k)
        read[source.data_ptr<int64_t>()[k]] = true;
      if (x.tracked() && x.dim == 1)
        record_read(x, &read);
      const auto& out_ids = selection_outputs(selection);
      std::vector<int64_t> ids;
      for (int64_t k = 0; k < target.numel(); ++k)
        ids.push_back(out_ids[target.data_ptr<int64_t>()[k]]);
      outputs[0] = tracked(*outputs[0].shape, 1, ids, {});
      return;
    }
    // Any other index_select: fine along another axis, not along the channel axis. Same sizes
    // everywhere could be a permutation of channels: refuse.
    if (x.tracked() && outputs[0].shape && *outputs[0].shape == *x.shape) {
      give_up(inputs, "index_select that may permute channels");
      return;
    }
    on_reduce_or_select(nullptr, inputs, outputs);
  }

  void on_index_copy(const torch::autograd::Node& node, const std::vector<Value>& inputs,
                     std::vector<Value>& outputs) {
    const torch::Tensor index = detail::saved_index(node);
    if (auto* selection = selection_with(index, /*source=*/false)) {
      outputs[0] = tracked(*outputs[0].shape, 1, selection_outputs(selection), {});
      return;
    }
    give_up(inputs, "index_copy");
  }

  // ---------------------------------------------------------------- user knowledge, results
  void apply_user_options() {
    auto axis_ids = [&](const std::string& name, int64_t dim) -> const std::vector<int64_t>& {
      const int t = graph_.find_tensor(name);
      if (t < 0) {
        throw std::invalid_argument("demon::DiscoveryOptions: no parameter or buffer named \"" +
                                    name + "\" in the model");
      }
      const auto found = axis_raw_.find({t, -1, dim});
      if (found == axis_raw_.end()) {
        throw std::invalid_argument("demon::DiscoveryOptions: axis " + std::to_string(dim) +
                                    " of \"" + name + "\" is not a channel axis in the graph");
      }
      return found->second;
    };
    for (const auto& c : options_.couplings) {
      const auto& a = axis_ids(c.tensor_a, c.dim_a);
      const auto& b = axis_ids(c.tensor_b, c.dim_b);
      if (a.size() != b.size()) {
        throw std::invalid_argument("demon::DiscoveryOptions::couple: \"" + c.tensor_a +
                                    "\" and \"" + c.tensor_b + "\" have different sizes");
      }
      unite_all(a, b);
    }
    for (const auto& name : options_.pinned_tensors) {
      const int t = graph_.find_tensor(name);
      if (t < 0) {
        throw std::invalid_argument(
            "demon::DiscoveryOptions::pin: no parameter or buffer named \"" + name +
            "\" in the model");
      }
      pinned_tensors_.emplace(t, "pinned by DiscoveryOptions");
    }
    for (const auto& [t, reason] : pinned_tensors_) {
      for (const auto& [key, ids] : axis_raw_) {
        if (std::get<0>(key) == t)
          pin_all(ids, reason);
      }
    }
  }

  void finalize() {
    for (const auto& [layer, rows] : linear_rows_) {
      graph_.layers_[layer].outputs_per_sample =
          batch_size_ > 0 && rows % batch_size_ == 0 ? rows / batch_size_ : rows;
    }
    // Channel classes that own at least one axis index become units, in axis order.
    std::unordered_map<int64_t, int64_t> unit_of_root;
    for (const auto& key : axis_order_) {
      for (int64_t raw : axis_raw_[key]) {
        const int64_t root = find(raw);
        if (!unit_of_root.count(root)) {
          const int64_t unit = static_cast<int64_t>(unit_of_root.size());
          unit_of_root[root] = unit;
          graph_.units_.emplace_back();
        }
      }
    }
    // Merge per-id facts into units.
    for (size_t raw = 0; raw < parent_.size(); ++raw) {
      const auto found = unit_of_root.find(find(static_cast<int64_t>(raw)));
      if (found == unit_of_root.end())
        continue;
      GraphUnit& unit = graph_.units_[found->second];
      if (!pin_reason_[raw].empty() && !unit.pinned) {
        unit.pinned = true;
        unit.pin_reason = pin_reason_[raw];
      }
      unit.observable = unit.observable && !unobservable_[raw];
      unit.read_sites.insert(unit.read_sites.end(), read_sites_[raw].begin(),
                             read_sites_[raw].end());
    }
    for (auto& unit : graph_.units_) {
      std::sort(unit.read_sites.begin(), unit.read_sites.end());
      unit.read_sites.erase(std::unique(unit.read_sites.begin(), unit.read_sites.end()),
                            unit.read_sites.end());
    }
    auto unit_of = [&](int64_t raw) {
      const auto found = unit_of_root.find(find(raw));
      return found == unit_of_root.end() ? int64_t{-1} : found->second;
    };
    // Axes and sites in unit ids.
    std::vector<std::vector<int>> unit_axes(graph_.units_.size());
    for (const auto& key : axis_order_) {
      GraphAxis axis;
      axis.tensor = std::get<0>(key);
      axis.layer = std::get<1>(key);
      axis.dim = std::get<2>(key);
      for (int64_t raw : axis_raw_[key])
        axis.owner.push_back(unit_of(raw));
      const int index = static_cast<int>(graph_.axes_.size());
      for (int64_t u : axis.owner) {
        if (unit_axes[u].empty() || unit_axes[u].back() != index)
          unit_axes[u].push_back(index);
      }
      graph_.axes_.push_back(std::move(axis));
    }
    for (size_t s = 0; s < graph_.sites_.size(); ++s) {
      for (int64_t raw : site_ids_[s])
        graph_.sites_[s].owner.push_back(unit_of(raw));
    }
    // Groups: units with the same axes, in order of first appearance.
    std::map<std::vector<int>, int> group_of_signature;
    for (const auto& axis : graph_.axes_) {
      for (int64_t u : axis.owner) {
        GraphUnit& unit = graph_.units_[u];
        if (unit.group >= 0)
          continue;
        auto [it, inserted] =
            group_of_signature.emplace(unit_axes[u], static_cast<int>(graph_.groups_.size()));
        if (inserted) {
          ChannelGroup group;
          group.axes = unit_axes[u];
          graph_.groups_.push_back(std::move(group));
        }
        unit.group = it->second;
        graph_.groups_[it->second].units.push_back(u);
      }
    }
    for (auto& group : graph_.groups_) {
      group.initial_size = static_cast<int64_t>(group.units.size());
      group.name = group_name(group);
    }
  }

  // The producing layers of a group: convolution / linear weights on dim 0, selection outputs.
  std::string group_name(const ChannelGroup& group) const {
    std::vector<std::string> producers;
    for (int a : group.axes) {
      const GraphAxis& axis = graph_.axes_[a];
      std::string name;
      if (axis.tensor < 0 && axis.dim == 1) {
        name = graph_.layers_[axis.layer].name;
      } else if (axis.tensor >= 0 && axis.dim == 0) {
        const int layer = graph_.tensors_[axis.tensor].layer;
        if (layer >= 0 && graph_.layers_[layer].weight == axis.tensor) {
          name = graph_.layers_[layer].name;
        }
      }
      if (!name.empty() && std::find(producers.begin(), producers.end(), name) == producers.end()) {
        producers.push_back(name);
      }
    }
    if (producers.empty()) {
      const GraphAxis& axis = graph_.axes_[group.axes.front()];
      return axis.tensor >= 0 ? graph_.tensors_[axis.tensor].name : graph_.layers_[axis.layer].name;
    }
    std::string name = producers.front();
    if (producers.size() > 1) {
      name += " (+" + std::to_string(producers.size() - 1) + " coupled)";
    }
    return name;
  }

  const DiscoveryOptions& options_;
  DependencyGraph graph_;
  std::unordered_map<const void*, int> tensor_index_;
  std::vector<torch::nn::Module*> tensor_module_;
  std::unordered_map<const torch::nn::Module*, std::string> module_names_;
  std::unordered_map<const torch::nn::Module*, std::shared_ptr<torch::nn::Module>> modules_;
  std::unordered_map<const torch::nn::Module*, int> layer_index_;
  std::unordered_map<const torch::autograd::Node*, std::vector<Value>> values_;
  std::unordered_map<const ChannelSelectionImpl*, std::vector<int64_t>> selection_outputs_;

  std::vector<int64_t> parent_;
  std::vector<std::string> pin_reason_;
  std::vector<bool> unobservable_;
  std::vector<std::vector<int32_t>> read_sites_;
  std::vector<std::vector<int32_t>> source_sets_{{}};
  std::map<std::vector<int32_t>, int32_t> source_index_;
  std::vector<std::vector<int64_t>> site_ids_;
  std::map<std::tuple<int, int, int64_t>, std::vector<int64_t>> axis_raw_;
  std::vector<std::tuple<int, int, int64_t>> axis_order_;
  std::map<int, std::string> pinned_tensors_;
  std::map<int, int64_t> linear_rows_;
  std::string current_op_;
  ActivationKind activation_kind_ = ActivationKind::kRelu;
  int64_t batch_size_ = 0;
};

DependencyGraph DependencyGraph::discover(torch::nn::Module& model, const torch::Tensor& root,
                                          const DiscoveryOptions& options) {
  return GraphBuilder(model, options).build(root);
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
    throw std::invalid_argument("demon::DependencyGraph::pin: no unit " + std::to_string(unit));
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

std::string DependencyGraph::summary() const {
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
      out << "  weight " << shape_string(tensors_[layer.weight].tensor.sizes().vec());
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
  return out << graph.summary();
}

}  // namespace demon
