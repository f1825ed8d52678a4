#include "panel_models.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "resnet.h"

namespace panel {
namespace {

namespace nn = torch::nn;

// The quickstart's CNN (PyTorch's MNIST example with BatchNorm): two 5×5 conv-BN-ReLU-pool
// stages, a hidden layer with BatchNorm1d and dropout.
struct QuickstartImpl : nn::Module {
  explicit QuickstartImpl(int64_t side) {
    const int64_t after = ((side - 4) / 2 - 4) / 2;
    conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(3, 32, 5)));
    bn1 = register_module("bn1", nn::BatchNorm2d(32));
    conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(32, 64, 5)));
    bn2 = register_module("bn2", nn::BatchNorm2d(64));
    fc1 = register_module("fc1", nn::Linear(64 * after * after, 256));
    bn3 = register_module("bn3", nn::BatchNorm1d(256));
    fc2 = register_module("fc2", nn::Linear(256, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(bn1(conv1(x))), 2);
    x = torch::max_pool2d(torch::relu(bn2(conv2(x))), 2).flatten(1);
    x = torch::dropout(torch::relu(bn3(fc1(x))), 0.5, is_training());
    return fc2(x);
  }
  nn::Conv2d conv1{nullptr}, conv2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::BatchNorm1d bn3{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Quickstart);

// A plain deep conv net: VGG-11's layout at a quarter width, BatchNorm after every conv.
struct VggImpl : nn::Module {
  VggImpl() {
    const std::vector<int64_t> layout = {16, 0, 32, 0, 64, 64, 0, 128, 128, 0, 128, 128};
    int64_t in = 3;
    for (int64_t width : layout) {
      if (width == 0) {
        features->push_back(nn::MaxPool2d(2));
        continue;
      }
      features->push_back(nn::Conv2d(nn::Conv2dOptions(in, width, 3).padding(1).bias(false)));
      features->push_back(nn::BatchNorm2d(width));
      features->push_back(nn::ReLU());
      in = width;
    }
    register_module("features", features);
    head = register_module("head", nn::Linear(in, 10));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return head(torch::adaptive_avg_pool2d(features->forward(x), {1, 1}).flatten(1));
  }
  nn::Sequential features;
  nn::Linear head{nullptr};
};
TORCH_MODULE(Vgg);

// An MLP on the flattened image, BatchNorm1d after each hidden layer.
struct MlpImpl : nn::Module {
  explicit MlpImpl(int64_t side) {
    fc1 = register_module("fc1", nn::Linear(3 * side * side, 512));
    bn1 = register_module("bn1", nn::BatchNorm1d(512));
    fc2 = register_module("fc2", nn::Linear(512, 256));
    bn2 = register_module("bn2", nn::BatchNorm1d(256));
    fc3 = register_module("fc3", nn::Linear(256, 10));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::relu(bn1(fc1(x.flatten(1))));
    h = torch::relu(bn2(fc2(h)));
    return fc3(h);
  }
  nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
  nn::BatchNorm1d bn1{nullptr}, bn2{nullptr};
};
TORCH_MODULE(Mlp);

// MobileNetV2's inverted residual: 1×1 expansion, 3×3 depthwise, 1×1 linear projection, and the
// input added back when the shape allows.
struct InvertedResidualImpl : nn::Module {
  InvertedResidualImpl(int64_t in, int64_t out, int64_t stride, int64_t expand)
      : residual(stride == 1 && in == out) {
    const int64_t hidden = in * expand;
    expand_conv =
        register_module("expand", nn::Conv2d(nn::Conv2dOptions(in, hidden, 1).bias(false)));
    expand_bn = register_module("expand_bn", nn::BatchNorm2d(hidden));
    depthwise = register_module("depthwise", nn::Conv2d(nn::Conv2dOptions(hidden, hidden, 3)
                                                            .stride(stride)
                                                            .padding(1)
                                                            .groups(hidden)
                                                            .bias(false)));
    depthwise_bn = register_module("depthwise_bn", nn::BatchNorm2d(hidden));
    project = register_module("project", nn::Conv2d(nn::Conv2dOptions(hidden, out, 1).bias(false)));
    project_bn = register_module("project_bn", nn::BatchNorm2d(out));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::relu6(expand_bn(expand_conv(x)));
    h = torch::relu6(depthwise_bn(depthwise(h)));
    h = project_bn(project(h));
    return residual ? h + x : h;
  }
  bool residual;
  nn::Conv2d expand_conv{nullptr}, depthwise{nullptr}, project{nullptr};
  nn::BatchNorm2d expand_bn{nullptr}, depthwise_bn{nullptr}, project_bn{nullptr};
};
TORCH_MODULE(InvertedResidual);

// A small MobileNetV2 for 32×32 inputs: a 3×3 stem, seven inverted residuals (expansion 4),
// a 1×1 head conv, global pooling, a linear classifier.
struct MobileNetImpl : nn::Module {
  MobileNetImpl() {
    stem = register_module("stem", nn::Conv2d(nn::Conv2dOptions(3, 16, 3).padding(1).bias(false)));
    stem_bn = register_module("stem_bn", nn::BatchNorm2d(16));
    // (out, stride) per block, expansion 4.
    const std::vector<std::pair<int64_t, int64_t>> layout = {{16, 1}, {24, 2}, {24, 1}, {32, 2},
                                                             {32, 1}, {64, 2}, {64, 1}};
    int64_t in = 16;
    for (const auto& [out, stride] : layout) {
      blocks->push_back(InvertedResidual(in, out, stride, 4));
      in = out;
    }
    register_module("blocks", blocks);
    head_conv = register_module("head_conv", nn::Conv2d(nn::Conv2dOptions(in, 256, 1).bias(false)));
    head_bn = register_module("head_bn", nn::BatchNorm2d(256));
    classifier = register_module("classifier", nn::Linear(256, 10));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::relu6(stem_bn(stem(x)));
    h = blocks->forward(h);
    h = torch::relu6(head_bn(head_conv(h)));
    return classifier(torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1));
  }
  nn::Conv2d stem{nullptr}, head_conv{nullptr};
  nn::BatchNorm2d stem_bn{nullptr}, head_bn{nullptr};
  nn::Sequential blocks;
  nn::Linear classifier{nullptr};
};
TORCH_MODULE(MobileNet);

template <typename Holder>
PanelModel wrap(Holder holder, Recipe recipe) {
  return {holder.ptr(), [holder](const torch::Tensor& x) mutable { return holder->forward(x); },
          std::move(recipe)};
}

}  // namespace

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"quickstart", "resnet18_w8", "vgg", "mlp",
                                                 "mobilenet"};
  return names;
}

PanelModel make_model(const std::string& name, int64_t side) {
  if (name == "quickstart") {
    return wrap(Quickstart(side), {"sgd", 0.01, 5e-4, "constant"});
  }
  if (name == "resnet18_w8") {
    return wrap(resnet18_cifar10::ResNet18(resnet18_cifar10::ResNetOptions().width(0.125)),
                {"adamw", 5e-3, 5e-4, "one_cycle"});
  }
  if (name == "vgg") {
    return wrap(Vgg(), {"sgd", 0.05, 5e-4, "cosine"});
  }
  if (name == "mlp") {
    return wrap(Mlp(side), {"adamw", 1e-3, 1e-4, "constant"});
  }
  if (name == "mobilenet") {
    return wrap(MobileNet(), {"adamw", 2e-3, 1e-4, "cosine"});
  }
  throw std::invalid_argument("unknown panel model \"" + name + "\"");
}

double learning_rate(const Recipe& recipe, int64_t step, int64_t total) {
  const double t = static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, total));
  const double pi = std::acos(-1.0);
  if (recipe.lr_schedule == "cosine") {
    return recipe.lr * 0.5 * (1.0 + std::cos(pi * t));
  }
  if (recipe.lr_schedule == "one_cycle") {
    // Up from lr/25 over the first 30%, then down to lr/(25·1e4), both by cosine.
    const double start = recipe.lr / 25.0, end = start / 1e4;
    if (t < 0.3) {
      return start + (recipe.lr - start) * 0.5 * (1.0 - std::cos(pi * t / 0.3));
    }
    return end + (recipe.lr - end) * 0.5 * (1.0 + std::cos(pi * (t - 0.3) / 0.7));
  }
  return recipe.lr;
}

}  // namespace panel
