#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "demon/layer_kinds.h"

namespace torch::optim {
class Optimizer;
}  // namespace torch::optim

namespace demon {

struct PruneOptions;
struct PruneResult;
class DependencyGraph;
struct DiscoveryOptions;
class GraphAssembly;

/// A parameter or buffer of the model.
struct GraphTensor {
  std::string name;      ///< its name in the model, e.g. "layer1.0.conv1.weight"
  torch::Tensor tensor;  ///< the model's own tensor (same TensorImpl: shrinking keeps identity)
  bool is_parameter = true;
  int layer = -1;  ///< the known layer that owns it, or -1
};

/// A module the engine recognized in the graph.
struct GraphLayer {
  std::string name;
  LayerKind kind = LayerKind::kConv;
  std::shared_ptr<torch::nn::Module> module;
  /// Positions per sample at which each weight element is applied, for FLOPs (convolution: output
  /// H·W; transposed convolution: input H·W; linear: tokens).
  int64_t outputs_per_sample = 0;
  int weight = -1;  ///< GraphTensor index of its weight (conv, linear), or -1
};

/// One axis of one tensor, with the unit that owns each of its indices. Removing a unit removes
/// every index it owns on every axis. A ChannelSelection has two virtual axes instead (dim 0:
/// its input channels, dim 1: its output channels).
struct GraphAxis {
  int tensor = -1;  ///< GraphTensor index, or -1 for a ChannelSelection's virtual axis
  int layer = -1;   ///< for virtual axes: the ChannelSelection layer
  int64_t dim = 0;
  std::vector<int64_t> owner;  ///< unit id per index
};

/// An activation whose output the engine reads (after forward, before backward).
struct ActivationSite {
  ActivationKind kind = ActivationKind::kRelu;
  size_t node_index = 0;       ///< position of its node in the canonical order of the graph's nodes
  int64_t dim = 1;             ///< the channel axis of the activation's output
  std::vector<int64_t> owner;  ///< unit id per index along `dim` (-1: belongs to no unit)
  /// Elements of its output per channel and per sample (H·W of a feature map, tokens of a
  /// sequence, 1 for [N, C]): its elements over its channels and the discovery batch
  /// (DiscoveryOptions::batch_size), or over its channels alone if the batch does not divide them.
  int64_t positions = 0;
};

/// The channels that must be removed together: one output channel of a layer with every
/// parameter, buffer and consumer slice that goes with it, coupled channels of residual adds or
/// element-wise products, a whole group of a GroupNorm or grouped convolution.
struct GraphUnit {
  int group = -1;
  bool removed = false;
  /// Unprunable: it reaches the model output, a cross-channel op, or an op the engine does not
  /// understand. `pin_reason` says which.
  bool pinned = false;
  std::string pin_reason;
  /// Every linear consumer (conv / linear / selection input) of its channels reads them from
  /// activation outputs through zero-preserving ops (pooling, dropout, reshapes, concatenation,
  /// sums of such), so "its activations are zero" proves "removing it changes nothing".
  bool observable = true;
  /// The activation sites whose outputs must be zero on this unit's channels for it to be dead.
  std::vector<int> read_sites;
};

/// Units with the same set of axes: typically one layer's output channels (with their
/// BatchNorm and consumers), or a stage of residual channels coupled by bare adds.
struct ChannelGroup {
  std::string name;            ///< producing layer(s), e.g. "layer1.0.conv1"
  std::vector<int64_t> units;  ///< current unit ids, in channel order
  std::vector<int> axes;       ///< GraphAxis indices its units own indices of
  int64_t initial_size = 0;
};

/// Extra knowledge for models the walker cannot see through.
struct DiscoveryOptions {
  struct Coupling {
    std::string tensor_a;
    int64_t dim_a;
    std::string tensor_b;
    int64_t dim_b;
  };
  /// Index i along (tensor_a, dim_a) and index i along (tensor_b, dim_b) are the same channel and
  /// must be removed together. Both axes must have the same size. Adds to couplings().
  DiscoveryOptions& couple(std::string tensor_a, int64_t dim_a, std::string tensor_b,
                           int64_t dim_b) {
    couplings_.push_back({std::move(tensor_a), dim_a, std::move(tensor_b), dim_b});
    return *this;
  }
  /// Every unit that owns an index of this parameter or buffer becomes unprunable. Adds to
  /// pinned_tensors().
  DiscoveryOptions& pin(std::string tensor) {
    pinned_tensors_.push_back(std::move(tensor));
    return *this;
  }
  /// Autograd nodes with this op name ("MyOp" for "MyOpBackward0") are per-element: channels
  /// pass through unchanged (not zero-preserving). Adds to elementwise_ops().
  DiscoveryOptions& elementwise_op(std::string op) {
    elementwise_ops_.push_back(std::move(op));
    return *this;
  }

  /// The couplings, pins and per-element ops given so far (or set whole).
  TORCH_ARG(std::vector<Coupling>, couplings) = {};
  TORCH_ARG(std::vector<std::string>, pinned_tensors) = {};
  TORCH_ARG(std::vector<std::string>, elementwise_ops) = {};
  /// Samples in the discovery batch, for per-sample FLOPs and activation elements; 0 infers it:
  /// the root's leading dim when the root is the model output, else the leading dim of the first
  /// op's output. Give it when that is not the batch (a sequence-first model seen from its loss).
  TORCH_ARG(int64_t, batch_size) = 0;
};

/// The channel structure of a model, discovered from the autograd graph of one training-mode
/// forward pass: no change to the model's code, no hooks.
///
/// ```
/// auto graph = demon::DependencyGraph::discover(*model, model->forward(x));
/// std::cout << graph;   // layers, groups, widths, what is unprunable and why
/// ```
///
/// Ops the walker does not understand make every channel they touch unprunable and are listed
/// in unknown_ops(): the graph never claims a cut it cannot prove safe.
class DependencyGraph {
 public:
  /// Walks the autograd graph from `root` (the model's output, or a loss computed from it).
  /// Throws demon::ValueError if `root` has no autograd graph.
  static DependencyGraph discover(torch::nn::Module& model, const torch::Tensor& root,
                                  const DiscoveryOptions& options = {});

  const std::vector<GraphTensor>& tensors() const noexcept { return tensors_; }
  const std::vector<GraphLayer>& layers() const noexcept { return layers_; }
  const std::vector<GraphAxis>& axes() const noexcept { return axes_; }
  const std::vector<ActivationSite>& sites() const noexcept { return sites_; }
  const std::vector<GraphUnit>& units() const noexcept { return units_; }
  const std::vector<ChannelGroup>& groups() const noexcept { return groups_; }
  /// Ops that made channels unprunable because the walker does not understand them, with counts.
  const std::map<std::string, int64_t>& unknown_ops() const noexcept { return unknown_ops_; }

  /// Not removed, not pinned, observable and read by at least one activation.
  bool prunable(int64_t unit) const;
  /// Units still in the model, over all groups.
  int64_t live_units() const;
  /// Forward FLOPs per sample of the convolution and linear layers (2 per multiply-add) at the
  /// current widths, for the input shape seen at discovery.
  int64_t flops() const;
  /// flops() and the elements of all parameters the graph knows, as they would be after removing
  /// `units` (nothing is changed). What a budget needs to weigh a cut before making it.
  int64_t flops_without(const std::vector<int64_t>& units) const;
  int64_t parameters_without(const std::vector<int64_t>& units) const;
  /// Per unit id, the FLOPs per sample that removing that unit alone would save:
  /// flops() - flops_without({u}), for all units in one pass (0 for removed units). What a
  /// FLOPs-aware pressure weighs units by.
  std::vector<int64_t> unit_flops() const;
  /// Per unit id, the activation elements per sample its channels hold at the activation sites
  /// (ReLU and the like, after normalization and residual adds): what removing it alone saves of
  /// the memory-bound work of a step. 0 for removed units.
  std::vector<int64_t> unit_activations() const;
  /// Index of a tensor by name, or -1.
  int find_tensor(const std::string& name) const;

  /// Number of autograd nodes and a hash of their types in canonical order, to recognize the
  /// same graph structure in a later forward pass.
  size_t node_count() const noexcept { return node_count_; }
  uint64_t fingerprint() const noexcept { return fingerprint_; }

  /// Human-readable: layers with widths, groups with their members, pins and unknown ops.
  std::string describe() const;
  [[deprecated("renamed describe(); summary() means a ModelSummary elsewhere")]] std::string
  summary() const {
    return describe();
  }

  /// Makes `unit` unprunable from now on, for `reason` (shown by describe()). Used by DemonPruner
  /// when cutting a group breaks the model's forward.
  void pin(int64_t unit, const std::string& reason);

 private:
  // The engine (src/graph/) fills a graph once, from what its walk recorded.
  friend class GraphAssembly;
  // Only surgery removes units: after it has sliced every tensor.
  friend PruneResult prune_units(DependencyGraph& graph, const std::vector<int64_t>& units,
                                 torch::optim::Optimizer* optimizer, PruneOptions options);

  /// Marks units removed and drops their indices from every axis and site; returns, per axis,
  /// the kept indices (of the old axis).
  std::vector<std::vector<int64_t>> remove_units(const std::vector<int64_t>& units);

  std::vector<GraphTensor> tensors_;
  std::vector<GraphLayer> layers_;
  std::vector<GraphAxis> axes_;
  std::vector<ActivationSite> sites_;
  std::vector<GraphUnit> units_;
  std::vector<ChannelGroup> groups_;
  std::map<std::string, int64_t> unknown_ops_;
  size_t node_count_ = 0;
  uint64_t fingerprint_ = 0;
};

std::ostream& operator<<(std::ostream& out, const DependencyGraph& graph);

}  // namespace demon
