#pragma once

// Everything demon knows about one layer type, in one place: how its weight carries channels,
// which buffers go with them, its normalization scale, its width, and how its options follow its
// shapes. The graph rules, surgery, the regularizer, the criterion and the report all ask here.

#include <torch/nn/module.h>
#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "demon/layer_kinds.h"

namespace demon::detail {

struct LayerSpec {
  const char* name = "";  ///< "Conv2d"
  /// The kind the graph records; nullopt for a type the graph does not cut (yet).
  std::optional<LayerKind> kind;
  bool (*matches)(const torch::nn::Module& module) = nullptr;
  /// Weight dims of the output and input channels (-1: none). Convolutions are
  /// [out, in/groups, k...], transposed ones [in, out/groups, k...]; a grouped layer slices only
  /// its full-size dim and cuts whole groups.
  int64_t weight_out_dim = -1;
  int64_t weight_in_dim = -1;
  bool transposed = false;  ///< a transposed convolution: its FLOPs scale with its input
  /// Convolution groups, or GroupNorm's (statistics per group): channels go a group at a time.
  int64_t (*groups)(const torch::nn::Module& module) = nullptr;  // nullptr: 1
  /// Per-channel buffers on dim 0, cut with the channels when defined.
  std::vector<std::string> channel_buffers;
  /// The per-channel scale the regularizer pushes toward zero; nullptr if none.
  torch::Tensor (*norm_scale)(torch::nn::Module& module) = nullptr;
  /// Output channels at the module's current size.
  int64_t (*width)(const torch::nn::Module& module) = nullptr;
  /// Rewrites the module's options from its tensors' current shapes; nullptr if none depend on
  /// them.
  void (*sync_options)(torch::nn::Module& module) = nullptr;

  int64_t groups_of(const torch::nn::Module& module) const {
    return groups != nullptr ? groups(module) : 1;
  }
};

/// LayerSpec::matches for modules of type Impl.
template <typename Impl>
bool is_module_of_type(const torch::nn::Module& module) {
  return dynamic_cast<const Impl*>(&module) != nullptr;
}

/// The spec of `module`'s type, or nullptr.
const LayerSpec* find_layer_spec(const torch::nn::Module& module);
/// Every spec, in the order they are tried.
const std::vector<LayerSpec>& layer_specs();

/// The normalization scale of `module` (undefined if it has none), from its spec.
torch::Tensor norm_scale_of(torch::nn::Module& module);
/// Rewrites a module's options from its tensors' current shapes (after surgery and after
/// loading a checkpoint, so that modules print, clone and serialize their real shape). Modules
/// without a spec are left alone.
void sync_module_options(torch::nn::Module& module);

// One function per family, each adding its specs (conv.cpp, linear.cpp, norms.cpp,
// selection.cpp); registry.cpp calls them in order.
void add_conv_specs(std::vector<LayerSpec>& specs);
void add_linear_specs(std::vector<LayerSpec>& specs);
void add_norm_specs(std::vector<LayerSpec>& specs);
void add_selection_specs(std::vector<LayerSpec>& specs);
void add_prelu_specs(std::vector<LayerSpec>& specs);

}  // namespace demon::detail
