#include "detail/autograd_nodes.h"

#include <torch/csrc/autograd/generated/Functions.h>
#include <torch/nn/functional/activation.h>

#include <cctype>
#include <typeinfo>
#include <unordered_set>
#include <utility>

#include "detail/torch_compat.h"

namespace demon::detail {

namespace generated = torch::autograd::generated;

std::string op_name(const torch::autograd::Node& node) {
  std::string name = node.name();
  const auto colon = name.rfind("::");
  if (colon != std::string::npos) {
    name = name.substr(colon + 2);
  }
  const auto backward = name.rfind("Backward");
  if (backward != std::string::npos && backward > 0) {
    bool digits_only = true;
    for (size_t i = backward + 8; i < name.size(); ++i) {
      digits_only = digits_only && std::isdigit(static_cast<unsigned char>(name[i]));
    }
    if (digits_only) {
      name = name.substr(0, backward);
    }
  }
  return name;
}

std::optional<ActivationKind> activation_kind(const torch::autograd::Node& node) {
  if (dynamic_cast<const generated::ReluBackward0*>(&node))
    return ActivationKind::kRelu;
  if (dynamic_cast<const generated::LeakyReluBackward0*>(&node))
    return ActivationKind::kLeakyRelu;
  if (dynamic_cast<const generated::GeluBackward0*>(&node))
    return ActivationKind::kGelu;
  if (dynamic_cast<const generated::SiluBackward0*>(&node))
    return ActivationKind::kSilu;
  if (dynamic_cast<const generated::SigmoidBackward0*>(&node))
    return ActivationKind::kSigmoid;
  if (dynamic_cast<const generated::TanhBackward0*>(&node))
    return ActivationKind::kTanh;
  if (dynamic_cast<const generated::HardtanhBackward0*>(&node))
    return ActivationKind::kHardtanh;
  return std::nullopt;
}

namespace {

// Unpacking throws when the saved tensor was released (after backward) or modified in place
// afterwards (the version check); either way the activation cannot be read.
torch::Tensor unpack_or_undefined(const torch::autograd::SavedVariable& saved,
                                  const NodePtr& owner) {
  try {
    return saved.unpack(owner);
  } catch (const c10::Error&) {
    return {};
  }
}

}  // namespace

torch::Tensor activation_output(const NodePtr& node, ActivationKind kind) {
  torch::NoGradGuard no_grad;
  auto* raw = node.get();
  switch (kind) {
    case ActivationKind::kRelu:
      return unpack_or_undefined(static_cast<generated::ReluBackward0*>(raw)->result_, node);
    case ActivationKind::kSigmoid:
      return unpack_or_undefined(static_cast<generated::SigmoidBackward0*>(raw)->result_, node);
    case ActivationKind::kTanh:
      return unpack_or_undefined(static_cast<generated::TanhBackward0*>(raw)->result_, node);
    case ActivationKind::kLeakyRelu: {
      auto* leaky = static_cast<generated::LeakyReluBackward0*>(raw);
      auto input = unpack_or_undefined(leaky->self_, nullptr);
      return input.defined() ? torch::leaky_relu(input, leaky->negative_slope) : input;
    }
    case ActivationKind::kGelu: {
      auto* gelu = static_cast<generated::GeluBackward0*>(raw);
      auto input = unpack_or_undefined(gelu->self_, nullptr);
      return input.defined() ? torch::gelu(input, gelu->approximate) : input;
    }
    case ActivationKind::kSilu: {
      auto input = unpack_or_undefined(static_cast<generated::SiluBackward0*>(raw)->self_, nullptr);
      return input.defined() ? torch::silu(input) : input;
    }
    case ActivationKind::kHardtanh: {
      auto* hardtanh = static_cast<generated::HardtanhBackward0*>(raw);
      auto input = unpack_or_undefined(hardtanh->self_, nullptr);
      return input.defined() ? torch::hardtanh(input, hardtanh->min_val, hardtanh->max_val) : input;
    }
  }
  return {};
}

std::optional<ReducedDims> reduced_dims(const torch::autograd::Node& node) {
  // The generated structs keep the op's arguments (derivatives.yaml names, the same in 1.13
  // and 2.x); an absent dim list means every dim.
  if (const auto* mean = dynamic_cast<const generated::MeanBackward1*>(&node)) {
    if (mean->dim.list)
      return ReducedDims{*mean->dim.list, mean->keepdim};
  } else if (const auto* sum = dynamic_cast<const generated::SumBackward1*>(&node)) {
    if (sum->dim.list)
      return ReducedDims{*sum->dim.list, sum->keepdim};
  } else if (const auto* amax = dynamic_cast<const generated::AmaxBackward0*>(&node)) {
    if (!amax->dim.empty())
      return ReducedDims{amax->dim, amax->keepdim};
  } else if (const auto* amin = dynamic_cast<const generated::AminBackward0*>(&node)) {
    if (!amin->dim.empty())
      return ReducedDims{amin->dim, amin->keepdim};
  } else if (const auto* select = dynamic_cast<const generated::SelectBackward0*>(&node)) {
    return ReducedDims{{select->dim}, /*keepdim=*/false};  // one index of one dim
  } else if (const auto* max = dynamic_cast<const generated::MaxBackward0*>(&node)) {
    return ReducedDims{{max->dim}, max->keepdim};  // max(dim): its values (indices have no node)
  } else if (const auto* min = dynamic_cast<const generated::MinBackward0*>(&node)) {
    return ReducedDims{{min->dim}, min->keepdim};
  } else if (const auto* unbind = dynamic_cast<const generated::UnbindBackward0*>(&node)) {
    return ReducedDims{{unbind->dim}, /*keepdim=*/false};  // every output drops the dim
  }
  return std::nullopt;
}

std::optional<std::vector<int64_t>> permutation(const torch::autograd::Node& node, int64_t rank) {
  const auto normalized = [rank](int64_t d) { return d < 0 ? d + rank : d; };
  if (const auto* permute = dynamic_cast<const generated::PermuteBackward0*>(&node)) {
    if (static_cast<int64_t>(permute->dims.size()) != rank)
      return std::nullopt;
    std::vector<int64_t> perm;
    for (int64_t d : permute->dims)
      perm.push_back(normalized(d));
    return perm;
  }
  if (const auto* transpose = dynamic_cast<const generated::TransposeBackward0*>(&node)) {
    std::vector<int64_t> perm(static_cast<size_t>(rank));
    for (int64_t k = 0; k < rank; ++k)
      perm[static_cast<size_t>(k)] = k;
    const int64_t a = normalized(transpose->dim0), b = normalized(transpose->dim1);
    if (a < 0 || b < 0 || a >= rank || b >= rank)
      return std::nullopt;
    std::swap(perm[static_cast<size_t>(a)], perm[static_cast<size_t>(b)]);
    return perm;
  }
  return std::nullopt;
}

torch::Tensor saved_index(const torch::autograd::Node& node) {
  if (auto* select = dynamic_cast<const generated::IndexSelectBackward0*>(&node)) {
    return unpack_or_undefined(select->index_, nullptr);
  }
  if (auto* copy = dynamic_cast<const generated::IndexCopyBackward0*>(&node)) {
    return unpack_or_undefined(copy->index_, nullptr);
  }
  return {};
}

torch::Tensor saved_data_input(const torch::autograd::Node& node) {
  torch::Tensor input;
  if (auto* conv = dynamic_cast<const generated::ConvolutionBackward0*>(&node)) {
    input = unpack_or_undefined(conv->input_, nullptr);
  } else if (auto* addmm = dynamic_cast<const generated::AddmmBackward0*>(&node)) {
    input = unpack_or_undefined(addmm->mat1_, nullptr);
  } else if (auto* mm = dynamic_cast<const generated::MmBackward0*>(&node)) {
    input = unpack_or_undefined(mm->self_, nullptr);
  } else if (auto* embedding = dynamic_cast<const generated::EmbeddingBackward0*>(&node)) {
    input = unpack_or_undefined(embedding->indices_, nullptr);
  }
  if (!input.defined() || input.requires_grad() || input.dim() == 0) {
    return {};
  }
  return input;
}

std::optional<bool> convolution_transposed(const torch::autograd::Node& node) {
  if (auto* conv = dynamic_cast<const generated::ConvolutionBackward0*>(&node)) {
    return conv->transposed;
  }
  return std::nullopt;
}

namespace {

template <typename BatchNormNode>
bool unpack_batch_norm(const torch::autograd::Node& node, std::optional<BatchNormSaved>* saved) {
  const auto* bn = dynamic_cast<const BatchNormNode*>(&node);
  if (bn != nullptr) {
    *saved = BatchNormSaved{unpack_or_undefined(bn->weight_, nullptr),
                            unpack_or_undefined(bn->running_mean_, nullptr)};
  }
  return bn != nullptr;
}

}  // namespace

std::optional<BatchNormSaved> batch_norm_saved(const torch::autograd::Node& node) {
  std::optional<BatchNormSaved> saved;
  unpack_batch_norm<generated::NativeBatchNormBackward0>(node, &saved) ||
      unpack_batch_norm<generated::CudnnBatchNormBackward0>(node, &saved)
#if DEMON_HAS_BATCH_NORM_LEGIT_NODE
      || unpack_batch_norm<generated::NativeBatchNormLegitBackward0>(node, &saved)
#endif
#if DEMON_HAS_BATCH_NORM_UPDATE_NODES
      || unpack_batch_norm<generated::BatchNormWithUpdateBackward0>(node, &saved) ||
      unpack_batch_norm<generated::BatchNormNoUpdateBackward0>(node, &saved)
#endif
      ;
  return saved;
}

torch::Tensor mul_constant_operand(const torch::autograd::Node& node, bool constant_is_other) {
  auto* mul = dynamic_cast<const generated::MulBackward0*>(&node);
  if (mul == nullptr) {
    return {};
  }
  return unpack_or_undefined(constant_is_other ? mul->other_ : mul->self_, nullptr);
}

}  // namespace demon::detail

namespace demon::detail {

std::vector<NodePtr> nodes_in_forward_order(const NodePtr& root) {
  std::vector<NodePtr> order;
  if (!root) {
    return order;
  }
  std::unordered_set<const torch::autograd::Node*> visited{root.get()};
  std::vector<std::pair<NodePtr, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& top = stack.back();
    if (top.second < top.first->num_outputs()) {
      NodePtr next = top.first->next_edge(top.second++).function;
      if (next && visited.insert(next.get()).second) {
        stack.emplace_back(std::move(next), 0);
      }
    } else {
      order.push_back(std::move(top.first));
      stack.pop_back();
    }
  }
  return order;
}

uint64_t structure_fingerprint(const std::vector<NodePtr>& nodes) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a over type hashes and edge counts
  for (const auto& node : nodes) {
    const torch::autograd::Node& object = *node;  // typeid of a plain reference: no side effects
    for (uint64_t value : {static_cast<uint64_t>(typeid(object).hash_code()),
                           static_cast<uint64_t>(node->num_outputs())}) {
      hash ^= value;
      hash *= 1099511628211ULL;
    }
  }
  return hash;
}

}  // namespace demon::detail
