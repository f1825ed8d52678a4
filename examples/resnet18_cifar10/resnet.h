#pragma once

// ResNet-18 for CIFAR, as in the DemP reference runs (the SRigL variant): 3×3 stem with stride 1
// and 64 channels, no max-pool; four stages of two basic blocks (64/128/256/512 channels,
// strides 1/2/2/2); 1×1 conv + BatchNorm projection shortcuts where the shape changes; global
// average pooling; a linear head.

#include <demon/channel_selection.h>
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace resnet18_cifar10 {

struct ResNetOptions {
  /// Multiplies every width (64/128/256/512); 1.0 is the reference network (11.17 M params).
  TORCH_ARG(double, width) = 1.0;
  TORCH_ARG(int64_t, num_classes) = 10;
  /// Identity shortcuts through demon::ChannelSelection (each block's outputs prune on their
  /// own, as in the reference) or as a bare `+ x` (a stage's residual channels prune together).
  TORCH_ARG(bool, selection_shortcuts) = true;
};

/// relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)).
class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride,
                 bool selection_shortcut);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, projection{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, projection_bn{nullptr};
  demon::ChannelSelection selection{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNet18Impl : public torch::nn::Module {
 public:
  explicit ResNet18Impl(ResNetOptions options = {});
  torch::Tensor forward(const torch::Tensor& x);

  ResNetOptions options;
  torch::nn::Conv2d stem{nullptr};
  torch::nn::BatchNorm2d stem_bn{nullptr};
  std::vector<BasicBlock> blocks;
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(ResNet18);

}  // namespace resnet18_cifar10
