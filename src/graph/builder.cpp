#include "graph/builder.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

#include "demon/errors.h"
#include "detail/autograd_nodes.h"
#include "detail/torch_compat.h"
#include "graph/assemble.h"
#include "graph/op_table.h"
#include "graph/rule_context.h"

namespace demon::detail {
namespace {

// An abstract interpreter over the autograd graph: one ChannelFlow per node output.
class GraphBuilder {
 public:
  GraphBuilder(torch::nn::Module& model, const DiscoveryOptions& options)
      : options_(options), context_(model) {}

  DependencyGraph build(const torch::Tensor& root) {
    if (!root.defined() || !root.grad_fn()) {
      throw ValueError(
          "demon::DependencyGraph::discover: the root tensor has no autograd graph; run the "
          "forward pass with gradients enabled (not under NoGradGuard) on a model with "
          "trainable parameters");
    }
    GraphRecord& record = context_.record();
    const auto nodes = nodes_in_forward_order(root.grad_fn());
    record.node_count = nodes.size();
    record.fingerprint = structure_fingerprint(nodes);
    if (options_.batch_size() > 0) {
      record.batch_size = options_.batch_size();
    } else if (root.dim() >= 1) {
      record.batch_size = root.size(0);
    }
    for (size_t i = 0; i < nodes.size(); ++i) {
      visit(*nodes[i], i);
    }
    if (const ChannelFlow* out = flow_of(root.grad_fn().get(), root.output_nr())) {
      context_.pin(*out, "model output");
    }
    return assemble_graph(std::move(record), options_);
  }

 private:
  const ChannelFlow* flow_of(const torch::autograd::Node* node, uint32_t output_nr) const {
    auto found = flows_.find(node);
    if (found == flows_.end() || output_nr >= found->second.size()) {
      return nullptr;
    }
    return &found->second[output_nr];
  }

  ChannelFlow input_flow(const torch::autograd::Edge& edge) const {
    if (!edge.is_valid()) {
      return ChannelFlow{};
    }
    const ChannelFlow* flow = flow_of(edge.function.get(), edge.input_nr);
    return flow != nullptr ? *flow : ChannelFlow{};
  }

  void visit(const torch::autograd::Node& node, size_t order) {
    const std::string op = op_name(node);
    std::vector<ChannelFlow> inputs;
    for (const auto& edge : node.next_edges()) {
      inputs.push_back(input_flow(edge));
    }
    std::vector<ChannelFlow> outputs(node.num_inputs());
    for (uint32_t i = 0; i < outputs.size(); ++i) {
      outputs[i] = ChannelFlow::opaque(output_shape(node, i));
    }
    const auto activation = activation_kind(node);
    const Rule rule = activation ? rules::activation : find_rule(op, options_.elementwise_ops());
    // Data enters through edges without gradient (the input batch) or flows from earlier ops.
    const bool any_data = std::any_of(inputs.begin(), inputs.end(), [](const ChannelFlow& v) {
      return v.is_data() || v.kind == ChannelFlow::Kind::kExternal;
    });
    if (rule != rules::accumulate_grad && !any_data) {
      follow_parameter_transform(op, inputs, outputs);
    } else {
      // The batch size, for per-sample FLOPs: the leading dim of the earliest data op's output.
      GraphRecord& record = context_.record();
      if (record.batch_size <= 0 && rule != rules::accumulate_grad && !outputs.empty() &&
          outputs[0].shape && !outputs[0].shape->empty()) {
        record.batch_size = outputs[0].shape->front();
      }
      OpCall call{node, op, activation, order, inputs, outputs};
      rule(context_, call);
    }
    flows_[&node] = std::move(outputs);
  }

  // Computed from parameters and constants only (weight transforms, penalties on weights): not
  // part of the data flow. A transpose of one parameter is remembered for Linear.
  static void follow_parameter_transform(const std::string& op,
                                         const std::vector<ChannelFlow>& inputs,
                                         std::vector<ChannelFlow>& outputs) {
    const bool any_param = std::any_of(inputs.begin(), inputs.end(), [](const ChannelFlow& v) {
      return v.is_param() || v.kind == ChannelFlow::Kind::kParamFunction;
    });
    for (auto& out : outputs) {
      out.kind = any_param ? ChannelFlow::Kind::kParamFunction : ChannelFlow::Kind::kExternal;
    }
    const bool one_param = inputs.size() == 1 && inputs[0].is_param() && outputs.size() == 1;
    if (op == "T" && one_param && !inputs[0].transposed) {
      outputs[0] = inputs[0];
      outputs[0].transposed = true;
    }
    // A dtype cast or copy of one parameter (autocast casts weights to bf16/fp16) is still that
    // parameter, shape and all.
    if ((op == "ToCopy" || op == "Clone" || op == "Alias") && one_param) {
      outputs[0] = inputs[0];
    }
  }

  const DiscoveryOptions& options_;
  RuleContext context_;
  std::unordered_map<const torch::autograd::Node*, std::vector<ChannelFlow>> flows_;
};

}  // namespace

DependencyGraph build_graph(torch::nn::Module& model, const torch::Tensor& root,
                            const DiscoveryOptions& options) {
  return GraphBuilder(model, options).build(root);
}

}  // namespace demon::detail
