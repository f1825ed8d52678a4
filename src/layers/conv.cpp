// Conv1d/2d/3d and ConvTranspose1d/2d/3d.

#include <torch/nn/modules/conv.h>

#include "layers/layer_spec.h"

namespace demon::detail {
namespace {

template <typename Conv>
const Conv& as_conv(const torch::nn::Module& module) {
  return dynamic_cast<const Conv&>(module);
}

template <typename Conv>
int64_t conv_groups(const torch::nn::Module& module) {
  return as_conv<Conv>(module).options.groups();
}

// Widths come from the weight, which surgery has already cut when it asks: dim 0 of a
// convolution, dim 1 times the groups of a transposed one.
template <typename Conv, bool kTransposed>
int64_t conv_width(const torch::nn::Module& module) {
  const auto& conv = as_conv<Conv>(module);
  return kTransposed ? conv.weight.size(1) * conv.options.groups() : conv.weight.size(0);
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

// A convolution's weight is [out, in/groups, k...], a transposed one's [in, out/groups, k...].
template <typename Conv, bool kTransposed>
LayerSpec conv_spec(const char* name) {
  LayerSpec spec;
  spec.name = name;
  spec.kind = LayerKind::kConv;
  spec.matches = is_module_of_type<Conv>;
  spec.weight_out_dim = kTransposed ? 1 : 0;
  spec.weight_in_dim = kTransposed ? 0 : 1;
  spec.transposed = kTransposed;
  spec.groups = conv_groups<Conv>;
  spec.width = conv_width<Conv, kTransposed>;
  spec.sync_options = sync_conv<Conv, kTransposed>;
  return spec;
}

}  // namespace

void add_conv_specs(std::vector<LayerSpec>& specs) {
  specs.push_back(conv_spec<torch::nn::Conv1dImpl, false>("Conv1d"));
  specs.push_back(conv_spec<torch::nn::Conv2dImpl, false>("Conv2d"));
  specs.push_back(conv_spec<torch::nn::Conv3dImpl, false>("Conv3d"));
  specs.push_back(conv_spec<torch::nn::ConvTranspose1dImpl, true>("ConvTranspose1d"));
  specs.push_back(conv_spec<torch::nn::ConvTranspose2dImpl, true>("ConvTranspose2d"));
  specs.push_back(conv_spec<torch::nn::ConvTranspose3dImpl, true>("ConvTranspose3d"));
}

}  // namespace demon::detail
