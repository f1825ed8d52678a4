#include "detail/module_options.h"

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "demon/channel_selection.h"

namespace demon::detail {
namespace {

template <typename Conv>
bool sync_conv(torch::nn::Module& module) {
  auto* conv = dynamic_cast<Conv*>(&module);
  if (conv == nullptr)
    return false;
  auto& o = conv->options;
  // A grouped convolution loses whole groups (the graph makes each group one unit), so its
  // outputs per group stay fixed; an ungrouped one stays ungrouped.
  const int64_t groups =
      o.groups() == 1 ? 1 : conv->weight.size(0) / (o.out_channels() / o.groups());
  o.out_channels(conv->weight.size(0));
  o.groups(groups);
  o.in_channels(conv->weight.size(1) * groups);
  return true;
}

template <typename BatchNorm>
bool sync_batch_norm(torch::nn::Module& module) {
  auto* bn = dynamic_cast<BatchNorm*>(&module);
  if (bn == nullptr)
    return false;
  const auto& reference = bn->running_mean.defined() ? bn->running_mean : bn->weight;
  if (reference.defined())
    bn->options.num_features(reference.size(0));
  return true;
}

}  // namespace

void sync_module_options(torch::nn::Module& module) {
  if (sync_conv<torch::nn::Conv1dImpl>(module) || sync_conv<torch::nn::Conv2dImpl>(module) ||
      sync_conv<torch::nn::Conv3dImpl>(module)) {
    return;
  }
  if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(&module)) {
    linear->options.out_features(linear->weight.size(0));
    linear->options.in_features(linear->weight.size(1));
    return;
  }
  if (sync_batch_norm<torch::nn::BatchNorm1dImpl>(module) ||
      sync_batch_norm<torch::nn::BatchNorm2dImpl>(module) ||
      sync_batch_norm<torch::nn::BatchNorm3dImpl>(module)) {
    return;
  }
  if (auto* gn = dynamic_cast<torch::nn::GroupNormImpl*>(&module)) {
    if (gn->weight.defined()) {
      const int64_t per_group = gn->options.num_channels() / gn->options.num_groups();
      gn->options.num_channels(gn->weight.size(0));
      gn->options.num_groups(gn->weight.size(0) / per_group);
    }
    return;
  }
  if (auto* selection = dynamic_cast<ChannelSelectionImpl*>(&module)) {
    selection->sync_from_buffers();
  }
}

}  // namespace demon::detail
