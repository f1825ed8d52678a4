#pragma once

// What a rule may know and do while the walker interprets one op: the model index (which module
// owns a tensor), the channel ids, the axes and sites recorded so far. A rule reaches the walk's
// state only through this class, so a rule's inputs are in its signature.

#include <torch/csrc/autograd/function.h>
#include <torch/nn/module.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "demon/graph.h"
#include "graph/channel_ids.h"
#include "graph/flow.h"

namespace demon {
class ChannelSelectionImpl;
}  // namespace demon

namespace demon::detail {

/// One op as a rule sees it.
struct OpCall {
  const torch::autograd::Node& node;
  const std::string& op;  ///< "Convolution", "Add", ... (op_name of the node)
  std::optional<ActivationKind> activation;
  size_t order;  ///< the node's position in forward order
  const std::vector<ChannelFlow>& in;
  std::vector<ChannelFlow>& out;  ///< preset to opaque data of the node's output shapes
};

/// A channel axis: (tensor, -1, dim) for a tensor's axis, (-1, layer, side) for a
/// ChannelSelection's virtual input (0) or output (1) axis.
using AxisKey = std::tuple<int, int, int64_t>;

/// Everything the walk found, for assembly into a DependencyGraph.
struct GraphRecord {
  std::vector<GraphTensor> tensors;
  std::vector<GraphLayer> layers;
  std::vector<ActivationSite> sites;                // owners filled by assembly
  std::vector<std::vector<int64_t>> site_channels;  // channel ids per site index
  std::map<std::string, int64_t> unknown_ops;
  ChannelIds ids;
  std::map<AxisKey, std::vector<int64_t>> axes;  // channel id per index of each axis
  std::vector<AxisKey> axis_order;               // axes in order of first recording
  std::map<int, std::string> pinned_tensors;     // every axis of these tensors is pinned
  std::map<int, int64_t> linear_rows;            // Linear layer → rows of its output
  int64_t batch_size = 0;
  size_t node_count = 0;
  uint64_t fingerprint = 0;

  /// Index of a tensor by its name in the model, or -1.
  int find_tensor(const std::string& name) const;
};

class RuleContext {
 public:
  /// Indexes every parameter and buffer of `model` with its owning module.
  explicit RuleContext(torch::nn::Module& model);

  GraphRecord& record() { return record_; }
  ChannelIds& ids() { return record_.ids; }
  ZeroSources& zero_sources() { return zero_sources_; }

  // ---- pins and the unknown
  /// Makes `flow`'s channels (or, for a parameter, all its axes) unprunable.
  void pin(const ChannelFlow& flow, const std::string& reason);
  void pin_each(const std::vector<ChannelFlow>& flows, const std::string& reason);
  /// An op the walker does not know: counted in unknown_ops(), its channels unprunable.
  void unknown_op(const OpCall& call);
  /// A known op used in a way the walker cannot follow: its inputs unprunable, for `reason`.
  void give_up(const OpCall& call, const std::string& reason) { pin_each(call.in, reason); }

  // ---- channels
  /// The channel ids of `flow` along `dim` for a consumer that slices that axis with `size`
  /// indices; fresh pinned ids if `flow` is not tracked there (its own channels, lost here, are
  /// pinned too).
  std::vector<int64_t> ids_along(const ChannelFlow& flow, int64_t dim, int64_t size,
                                 const std::string& reason);
  /// A linear consumer (conv, linear, selection) reads `flow`'s channels (those in `only`): each
  /// is provably removable only if what it reads is zero when its sources are.
  void record_read(const ChannelFlow& flow, const std::vector<bool>* only = nullptr);
  /// Index i of (tensor, dim) belongs to channel ids[i]. A second recording of the same axis (a
  /// module used twice, tied weights) unites the channels.
  void record_axis(int tensor, int64_t dim, const std::vector<int64_t>& ids);
  void record_virtual_axis(int layer, int64_t side, const std::vector<int64_t>& ids);
  /// A new activation site whose output (of `shape`) has `channels` along `dim`; its index.
  int add_site(ActivationKind kind, size_t order, const Shape& shape, int64_t dim,
               const std::vector<int64_t>& channels);

  // ---- the model
  /// The model's tensor of this TensorImpl, or -1.
  int tensor_index(const torch::Tensor& tensor) const;
  const torch::Tensor& tensor(int index) const { return record_.tensors.at(index).tensor; }
  /// The module that owns tensor `index` (nullptr for -1).
  torch::nn::Module* module_of(int index) const;
  /// The module that owns a parameter flow, else nullptr.
  torch::nn::Module* module_of(const ChannelFlow& flow) const;
  /// The tensor `module.<local>`, or -1.
  int buffer_of(torch::nn::Module* module, const std::string& local) const;
  /// The layer of `module`, recorded as `kind` on first use.
  int layer_for(torch::nn::Module* module, LayerKind kind);
  GraphLayer& layer(int index) { return record_.layers.at(index); }
  /// The output channel ids of a ChannelSelection (made and recorded on first use).
  const std::vector<int64_t>& selection_outputs(ChannelSelectionImpl* selection);

 private:
  void record_axis_key(const AxisKey& key, const std::vector<int64_t>& ids);

  GraphRecord record_;
  ZeroSources zero_sources_;
  std::unordered_map<const void*, int> tensor_index_;
  std::vector<torch::nn::Module*> tensor_module_;
  std::unordered_map<const torch::nn::Module*, std::string> module_names_;
  std::unordered_map<const torch::nn::Module*, std::shared_ptr<torch::nn::Module>> modules_;
  std::unordered_map<const torch::nn::Module*, int> layer_index_;
  std::unordered_map<const ChannelSelectionImpl*, std::vector<int64_t>> selection_outputs_;
};

}  // namespace demon::detail
