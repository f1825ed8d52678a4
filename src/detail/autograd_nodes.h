#pragma once

// Reading autograd nodes: their op names and the tensors some of them save. The one place that
// includes LibTorch's generated Functions.h (slow to compile; field names are stable across
// versions because they come from derivatives.yaml).

#include <torch/csrc/autograd/function.h>

#include <optional>
#include <string>
#include <vector>

#include "demon/layer_kinds.h"
#include "detail/torch_compat.h"

namespace demon::detail {

/// "ConvolutionBackward0" → "Convolution"; "torch::autograd::AccumulateGrad" → "AccumulateGrad".
std::string op_name(const torch::autograd::Node& node);

/// The activation kind whose output `node` can hand over, if any (ReLU, LeakyReLU, GELU, SiLU,
/// Sigmoid, Tanh, Hardtanh/ReLU6).
std::optional<ActivationKind> activation_kind(const torch::autograd::Node& node);

/// The post-activation output of an activation node of `kind`, from what it saved (ReLU, Sigmoid
/// and Tanh save their result; the others their input, from which the output is recomputed).
/// Undefined if the node's saved tensors were released or modified in place.
torch::Tensor activation_output(const NodePtr& node, ActivationKind kind);

/// The dims a reduction node removed (Mean and Sum over dims, Amax and Amin, Max and Min over
/// one dim, Select's one, and Unbind's, which every output lost), as the op was called (they may
/// be negative), and whether it kept them as size 1; nullopt for other nodes and for reductions
/// over every dim.
struct ReducedDims {
  std::vector<int64_t> dims;
  bool keepdim = false;
};
std::optional<ReducedDims> reduced_dims(const torch::autograd::Node& node);

/// For a Permute or Transpose node on an input of `rank` dims: which input dim each output dim
/// is (output k = input perm[k]); nullopt for other nodes.
std::optional<std::vector<int64_t>> permutation(const torch::autograd::Node& node, int64_t rank);

/// For a ConvolutionBackward node: whether the forward was a transposed convolution; nullopt for
/// other nodes.
std::optional<bool> convolution_transposed(const torch::autograd::Node& node);

/// What a batch-norm node saved of its forward's optional inputs: the weight and the running
/// mean (the module's own buffer, which identifies a BatchNorm without affine parameters), each
/// undefined where the forward had none; nullopt for other nodes.
struct BatchNormSaved {
  torch::Tensor weight;
  torch::Tensor running_mean;
};
std::optional<BatchNormSaved> batch_norm_saved(const torch::autograd::Node& node);

/// The index tensor saved by IndexSelectBackward / IndexCopyBackward, else undefined.
torch::Tensor saved_index(const torch::autograd::Node& node);

/// The input a layer node saved for its weight's gradient (Convolution: input, Addmm: mat1, Mm:
/// self, Embedding: indices) when that input is plain data, computed without gradients: in a
/// model's first layer, the network input (or what the forward made of it). Else undefined.
torch::Tensor saved_data_input(const torch::autograd::Node& node);

/// For MulBackward0 with one operand that does not require grad: that operand (saved for the
/// other's gradient), else undefined. `constant_is_other` says which of the two it is.
torch::Tensor mul_constant_operand(const torch::autograd::Node& node, bool constant_is_other);

}  // namespace demon::detail

namespace demon::detail {

/// Every node reachable from `root`, producers before consumers (a post-order walk over
/// next_edges in edge order). Deterministic for a given graph structure: the "canonical order"
/// that ActivationSite::node_index refers to.
std::vector<NodePtr> nodes_in_forward_order(const NodePtr& root);

/// A hash of the nodes' dynamic types in order, to recognize the same structure again.
uint64_t structure_fingerprint(const std::vector<NodePtr>& nodes);

}  // namespace demon::detail
