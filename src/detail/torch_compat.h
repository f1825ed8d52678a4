#pragma once

// Everything that differs between LibTorch versions lives here, and only here: the library, its
// tests and benchmarks include this header instead of testing TORCH_VERSION_*. It is private (the
// public headers name no LibTorch internals); the one public name that depends on the version,
// demon::ProcessGroup, is chosen in demon/data_parallel_options.h. What it bridges, by the version
// that changed it:
//   2.0   c10d collectives on Backend (demon::ProcessGroup); batch norm's Legit node; the shape in
//         autograd input metadata (output_shape); optimizer state keyed by void*
//         (optimizer_state_key); Optimizer::load restores saved group options
//         (adopt_saved_options_as, used by detail/optimizer_spec.cpp)
//   2.3   batch norm's Update/NoUpdate nodes
//   2.4   autocast's per-device dtype and switch (set_cuda_autocast, public as demon/autocast.h)
//   2.13  autograd nodes held by c10::intrusive_ptr (NodePtr)
//   2.15  LibTorch's headers need C++20, which its CMake target asks for (demon's own code stays
//         C++17-clean)

#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/version.h>

#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace demon::detail {

/// The owning pointer to an autograd node, as `Tensor::grad_fn()`, `Edge::function` and
/// `SavedVariable::unpack` take and give it: `std::shared_ptr` up to 2.12, `c10::intrusive_ptr`
/// from 2.13. Both have `get()`, a test for null, and cheap copies.
using NodePtr = std::decay_t<decltype(std::declval<const at::TensorBase&>().grad_fn())>;

/// Batch norm's autograd nodes: 1.13 records NativeBatchNormBackward0 (CudnnBatchNormBackward0 on
/// CUDA); 2.x adds NativeBatchNormLegitBackward0, and 2.3 the BatchNormWithUpdateBackward0 /
/// BatchNormNoUpdateBackward0 that its nn::BatchNorm records.
#if TORCH_VERSION_MAJOR >= 2
#define DEMON_HAS_BATCH_NORM_LEGIT_NODE 1
#else
#define DEMON_HAS_BATCH_NORM_LEGIT_NODE 0
#endif
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define DEMON_HAS_BATCH_NORM_UPDATE_NODES 1
#else
#define DEMON_HAS_BATCH_NORM_UPDATE_NODES 0
#endif

/// The shape of a node's `output_nr`-th forward output, or nullopt when it is not a plain
/// (non-nested) tensor.
inline std::optional<std::vector<int64_t>> output_shape(const torch::autograd::Node& node,
                                                        uint32_t output_nr) {
  if (output_nr >= node.num_inputs()) {
    return std::nullopt;
  }
  const auto& meta = node.input_metadata(output_nr);
#if TORCH_VERSION_MAJOR >= 2
  if (meta.is_nested_tensor() || meta.was_default_constructed()) {
    return std::nullopt;
  }
  std::vector<int64_t> shape;
  for (const auto& size : meta.shape_as_dim_vector()) {
    shape.push_back(size.expect_int());
  }
  return shape;
#else
  // 1.13 keeps the shape private; the one public reader is this message, which ends with
  // "expected shape compatible with [d0, d1, ...]".
  const std::string text = meta.incompatible_shape_error_message(0, at::empty({0})).str();
  const auto open = text.rfind('[');
  const auto close = text.rfind(']');
  const std::string marker = "compatible with [";
  if (open == std::string::npos || close == std::string::npos || close < open ||
      text.compare(open - marker.size() + 1, marker.size(), marker) != 0) {
    return std::nullopt;
  }
  std::vector<int64_t> shape;
  std::istringstream in(text.substr(open + 1, close - open - 1));
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      shape.push_back(std::stoll(item));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return shape;
#endif
}

/// The optimizer's state map is keyed by std::string in 1.13 and by void* in 2.x; both are derived
/// from the parameter's TensorImpl.
using OptimizerStateMap =
    std::remove_reference_t<decltype(std::declval<torch::optim::Optimizer&>().state())>;
using OptimizerStateKey = OptimizerStateMap::key_type;

inline OptimizerStateKey optimizer_state_key(const torch::Tensor& param) {
#if TORCH_VERSION_MAJOR >= 2
  return static_cast<OptimizerStateKey>(param.unsafeGetTensorImpl());
#else
  return c10::guts::to_string(param.unsafeGetTensorImpl());
#endif
}

/// After `optimizer.load(archive)`, when the optimizer's groups hold `Options`: on 1.13, whose load
/// keeps the optimizer's own group options, the options the archive saved replace them; on 2.x,
/// whose load adopts them itself, nothing is left to do. False, changing nothing, when the groups
/// hold other options (and always on 2.x).
template <typename Options>
bool adopt_saved_options_as(torch::serialize::InputArchive& archive,
                            torch::optim::Optimizer& optimizer) {
#if TORCH_VERSION_MAJOR < 2
  auto& groups = optimizer.param_groups();
  if (groups.empty() || dynamic_cast<Options*>(&groups[0].options()) == nullptr)
    return false;
  torch::serialize::InputArchive saved_groups;
  archive.read("param_groups", saved_groups);
  for (size_t i = 0; i < groups.size(); ++i) {
    torch::serialize::InputArchive group, options_archive;
    saved_groups.read("param_groups/" + std::to_string(i), group);
    group.read("options", options_archive);
    Options saved(0);
    saved.serialize(options_archive);
    static_cast<Options&>(groups[i].options()) = saved;
  }
  return true;
#else
  (void)archive;
  (void)optimizer;
  return false;
#endif
}

/// Gives `tensor` new data of another shape in place (set_data: same TensorImpl, so modules and
/// optimizers keep holding it). Its gradient accumulator records the old shape, and a graph still
/// alive from before (a kept loss, an undetached clone) would hand it to new graphs: it is
/// forgotten, which set_data itself only does on a dtype or device change. Call under no-grad.
inline void set_data_of_new_shape(const torch::Tensor& tensor, const torch::Tensor& data) {
  torch::Tensor handle = tensor;
  handle.set_data(data);
  if (auto* meta = torch::autograd::impl::get_autograd_meta(handle)) {
    meta->grad_accumulator_.reset();
  }
}

/// Enables (or disables) CUDA autocast to `dtype` for the current thread; disabling also drops
/// autocast's cache of casted weights (stale after a prune event).
inline void set_cuda_autocast(bool enabled, at::ScalarType dtype = at::kBFloat16) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
#else
  at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(enabled);
#endif
  if (!enabled) {
    at::autocast::clear_cache();
  }
}

}  // namespace demon::detail
