// Conv1d/2d/3d and ConvTranspose1d/2d/3d.

#include <torch/nn/modules/conv.h>

#include "layers/layer_spec.h"

namespace demon::detail {
namespace {

template <typename Conv>
bool is_conv(const torch::nn::Module& module) {
  return dynamic_cast<const Conv*>(&module) != nullptr;
}

template <typename Conv>
const Conv& as_conv(const torch::nn::Module& module) {
  return dynamic_cast<const Conv&>(module);
}

template <typename Conv>
int64_t conv_groups(const torch::nn::Module& module) {
  return as_conv<Conv>(module).options.groups();
}

// Widths come from the weight, which surgery has already cut when it asks.
template <typename Conv>
int64_t conv_width(const torch::nn::Module& module) {
  return as_conv<Conv>(module).weight.size(0);
}

template <typename Conv>
int64_t conv_transpose_width(const torch::nn::Module& module) {
  const auto& conv = as_conv<Conv>(module);
  return conv.weight.size(1) * conv.options.groups();
}

// Weight dim 0 holds every channel of one side (a convolution's outputs, a transposed one's
// inputs), dim 1 one group's worth of the other. A grouped convolution loses whole groups (the
// graph makes each group one unit), so its channels per group stay fixed; an ungrouped one stays
// ungrouped.
template <typename Conv, bool kTransposed>
void sync_conv(torch::nn::Module& module) {
  auto& conv = dynamic_cast<Conv&>(module);
  auto& o = conv.options;
  const int64_t full = conv.weight.size(0);
  const int64_t full_before = kTransposed ? o.in_channels() : o.out_channels();
  const int64_t groups = o.groups() == 1 ? 1 : full / (full_before / o.groups());
  const int64_t other = conv.weight.size(1) * groups;
  o.groups(groups);
  o.out_channels(kTransposed ? other : full);
  o.in_channels(kTransposed ? full : other);
}

template <typename Conv>
LayerSpec conv_spec(const char* name) {
  LayerSpec spec;
  spec.name = name;
  spec.kind = LayerKind::kConv;
  spec.matches = is_conv<Conv>;
  spec.weight_out_dim = 0;
  spec.weight_in_dim = 1;
  spec.groups = conv_groups<Conv>;
  spec.width = conv_width<Conv>;
  spec.sync_options = sync_conv<Conv, false>;
  return spec;
}

template <typename Conv>
LayerSpec conv_transpose_spec(const char* name) {
  LayerSpec spec;
  spec.name = name;
  spec.kind = LayerKind::kConv;
  spec.matches = is_conv<Conv>;
  spec.weight_out_dim = 1;
  spec.weight_in_dim = 0;
  spec.transposed = true;
  spec.groups = conv_groups<Conv>;
  spec.width = conv_transpose_width<Conv>;
  spec.sync_options = sync_conv<Conv, true>;
  return spec;
}

}  // namespace

void add_conv_specs(std::vector<LayerSpec>& specs) {
  specs.push_back(conv_spec<torch::nn::Conv1dImpl>("Conv1d"));
  specs.push_back(conv_spec<torch::nn::Conv2dImpl>("Conv2d"));
  specs.push_back(conv_spec<torch::nn::Conv3dImpl>("Conv3d"));
  specs.push_back(conv_transpose_spec<torch::nn::ConvTranspose1dImpl>("ConvTranspose1d"));
  specs.push_back(conv_transpose_spec<torch::nn::ConvTranspose2dImpl>("ConvTranspose2d"));
  specs.push_back(conv_transpose_spec<torch::nn::ConvTranspose3dImpl>("ConvTranspose3d"));
}

}  // namespace demon::detail
