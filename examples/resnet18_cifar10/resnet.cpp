#include "resnet.h"

#include <cmath>
#include <string>

namespace resnet18_cifar10 {
namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(kernel / 2).bias(false));
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride,
                               bool selection_shortcut) {
  conv1 = register_module("conv1", conv(in_channels, out_channels, 3, stride));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(out_channels));
  conv2 = register_module("conv2", conv(out_channels, out_channels, 3, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    projection = register_module("projection", conv(in_channels, out_channels, 1, stride));
    projection_bn = register_module("projection_bn", torch::nn::BatchNorm2d(out_channels));
  } else if (selection_shortcut) {
    selection = register_module("selection", demon::ChannelSelection(in_channels));
  }
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  auto out = bn2(conv2(torch::relu(bn1(conv1(x)))));
  if (!projection.is_empty()) {
    out = out + projection_bn(projection(x));
  } else if (!selection.is_empty()) {
    out = out + selection(x);
  } else {
    out = out + x;
  }
  return torch::relu(out);
}

ResNet18Impl::ResNet18Impl(ResNetOptions options_) : options(options_) {
  TORCH_CHECK(options.width() > 0, "ResNet18: width must be > 0, got ", options.width());
  auto scaled = [&](int64_t channels) {
    return std::max<int64_t>(1, std::llround(static_cast<double>(channels) * options.width()));
  };
  const int64_t stem_channels = scaled(64);
  stem = register_module("stem", conv(3, stem_channels, 3, 1));
  stem_bn = register_module("stem_bn", torch::nn::BatchNorm2d(stem_channels));
  int64_t in = stem_channels;
  const int64_t widths[] = {64, 128, 256, 512};
  const int64_t strides[] = {1, 2, 2, 2};
  for (int stage = 0; stage < 4; ++stage) {
    for (int b = 0; b < 2; ++b) {
      const int64_t out = scaled(widths[stage]);
      const std::string name = "layer" + std::to_string(stage + 1) + "_" + std::to_string(b);
      blocks.push_back(register_module(
          name, BasicBlock(in, out, b == 0 ? strides[stage] : 1, options.selection_shortcuts())));
      in = out;
    }
  }
  head = register_module("head", torch::nn::Linear(in, options.num_classes()));

  // Kaiming-normal (fan out, ReLU) for convolutions, BatchNorm at (1, 0), as is customary.
  torch::NoGradGuard no_grad;
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* c = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    } else if (auto* bn = module->as<torch::nn::BatchNorm2d>()) {
      torch::nn::init::ones_(bn->weight);
      torch::nn::init::zeros_(bn->bias);
    }
  }
}

torch::Tensor ResNet18Impl::forward(const torch::Tensor& x) {
  auto h = torch::relu(stem_bn(stem(x)));
  for (auto& block : blocks) {
    h = block(h);
  }
  return head(torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1));
}

}  // namespace resnet18_cifar10
