#pragma once

// Small models covering the structures the engine must understand. Each has a `forward` and a
// matching `example_input(batch)`.

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "demon/channel_selection.h"

namespace demon::testing {

namespace nn = torch::nn;

inline nn::Conv2d conv(int64_t in, int64_t out, int64_t k = 3, int64_t groups = 1,
                       bool bias = false, int64_t stride = 1) {
  return nn::Conv2d(
      nn::Conv2dOptions(in, out, k).padding(k / 2).groups(groups).bias(bias).stride(stride));
}

/// A model with a forward that takes one tensor; what the tests need.
struct TestModel : nn::Module {
  virtual torch::Tensor forward(torch::Tensor x) = 0;
  virtual torch::Tensor example_input(int64_t batch) = 0;
  double dropout = 0.2;  // for the models that have dropout
};

/// VGG-like: conv-bn-relu(-maxpool) ×3, flatten (one channel = 16 features), linear-relu-dropout,
/// linear head.
struct VggNet : TestModel {
  VggNet() {
    c1 = register_module("c1", conv(3, 8));
    b1 = register_module("b1", nn::BatchNorm2d(8));
    c2 = register_module("c2", conv(8, 12, 3, 1, /*bias=*/true));
    b2 = register_module("b2", nn::BatchNorm2d(12));
    c3 = register_module("c3", conv(12, 10));
    b3 = register_module("b3", nn::BatchNorm2d(10));
    fc1 = register_module("fc1", nn::Linear(10 * 4 * 4, 20));
    fc2 = register_module("fc2", nn::Linear(20, 5));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::max_pool2d(torch::relu(b1(c1(x))), 2);
    x = torch::max_pool2d(torch::relu(b2(c2(x))), 2);
    x = torch::relu(b3(c3(x)));
    x = torch::dropout(torch::relu(fc1(x.flatten(1))), dropout, is_training());
    return fc2(x);
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 16, 16}); }
  nn::Conv2d c1{nullptr}, c2{nullptr}, c3{nullptr};
  nn::BatchNorm2d b1{nullptr}, b2{nullptr}, b3{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr};
};

/// A residual basic block: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), with the
/// shortcut a bare identity, a ChannelSelection, or a 1×1 conv + BN projection.
struct Block : nn::Module {
  enum class Shortcut { kBare, kSelection, kProjection };
  Block(int64_t in, int64_t out, Shortcut shortcut, int64_t stride = 1) : kind(shortcut) {
    conv1 = register_module("conv1", conv(in, out, 3, 1, false, stride));
    bn1 = register_module("bn1", nn::BatchNorm2d(out));
    conv2 = register_module("conv2", conv(out, out));
    bn2 = register_module("bn2", nn::BatchNorm2d(out));
    if (kind == Shortcut::kSelection) {
      selection = register_module("shortcut", ChannelSelection(in));
    } else if (kind == Shortcut::kProjection) {
      proj = register_module("proj", conv(in, out, 1, 1, false, stride));
      proj_bn = register_module("proj_bn", nn::BatchNorm2d(out));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto out = bn2(conv2(torch::relu(bn1(conv1(x)))));
    switch (kind) {
      case Shortcut::kBare:
        return torch::relu(out + x);
      case Shortcut::kSelection:
        return torch::relu(out + selection(x));
      case Shortcut::kProjection:
        return torch::relu(out + proj_bn(proj(x)));
    }
    return out;
  }
  Shortcut kind;
  nn::Conv2d conv1{nullptr}, conv2{nullptr}, proj{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, proj_bn{nullptr};
  ChannelSelection selection{nullptr};
};

/// stem, two identity-shortcut blocks, one projection block, global pool, head.
struct ResNet : TestModel {
  explicit ResNet(Block::Shortcut identity) {
    stem = register_module("stem", conv(3, 8));
    stem_bn = register_module("stem_bn", nn::BatchNorm2d(8));
    blocks.push_back(register_module("block1", std::make_shared<Block>(8, 8, identity)));
    blocks.push_back(register_module("block2", std::make_shared<Block>(8, 8, identity)));
    blocks.push_back(
        register_module("block3", std::make_shared<Block>(8, 12, Block::Shortcut::kProjection, 2)));
    head = register_module("head", nn::Linear(12, 5));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(stem_bn(stem(x)));
    for (auto& block : blocks)
      x = block->forward(x);
    return head(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 8, 8}); }
  nn::Conv2d stem{nullptr};
  nn::BatchNorm2d stem_bn{nullptr};
  std::vector<std::shared_ptr<Block>> blocks;
  nn::Linear head{nullptr};
};

/// Two branches concatenated along channels, then a conv reading both.
struct ConcatNet : TestModel {
  ConcatNet() {
    a = register_module("a", conv(3, 6));
    a_bn = register_module("a_bn", nn::BatchNorm2d(6));
    b = register_module("b", conv(3, 4, 1));
    b_bn = register_module("b_bn", nn::BatchNorm2d(4));
    mix = register_module("mix", conv(10, 7));
    mix_bn = register_module("mix_bn", nn::BatchNorm2d(7));
    head = register_module("head", nn::Linear(7, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    auto left = torch::relu(a_bn(a(x)));
    auto right = torch::relu(b_bn(b(x)));
    auto h = torch::relu(mix_bn(mix(torch::cat({left, right}, 1))));
    return head(h.mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 6, 6}); }
  nn::Conv2d a{nullptr}, b{nullptr}, mix{nullptr};
  nn::BatchNorm2d a_bn{nullptr}, b_bn{nullptr}, mix_bn{nullptr};
  nn::Linear head{nullptr};
};

/// MobileNet-style: 1×1 expand, depthwise 3×3, 1×1 project (each + BN + ReLU), then head.
struct DepthwiseNet : TestModel {
  DepthwiseNet() {
    stem = register_module("stem", conv(3, 6));
    stem_bn = register_module("stem_bn", nn::BatchNorm2d(6));
    expand = register_module("expand", conv(6, 12, 1));
    expand_bn = register_module("expand_bn", nn::BatchNorm2d(12));
    depthwise = register_module("depthwise", conv(12, 12, 3, /*groups=*/12));
    depthwise_bn = register_module("depthwise_bn", nn::BatchNorm2d(12));
    project = register_module("project", conv(12, 8, 1));
    project_bn = register_module("project_bn", nn::BatchNorm2d(8));
    head = register_module("head", nn::Linear(8, 4));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(stem_bn(stem(x)));
    x = torch::relu(expand_bn(expand(x)));
    x = torch::relu(depthwise_bn(depthwise(x)));
    x = torch::relu(project_bn(project(x)));
    return head(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 8, 8}); }
  nn::Conv2d stem{nullptr}, expand{nullptr}, depthwise{nullptr}, project{nullptr};
  nn::BatchNorm2d stem_bn{nullptr}, expand_bn{nullptr}, depthwise_bn{nullptr}, project_bn{nullptr};
  nn::Linear head{nullptr};
};

/// MLP with LayerNorm: the LayerNorm's inputs are coupled by its statistics (unprunable);
/// the hidden units after the ReLU are prunable; BatchNorm1d in the second layer.
struct LayerNormMlp : TestModel {
  LayerNormMlp() {
    fc1 = register_module("fc1", nn::Linear(10, 16));
    ln = register_module("ln", nn::LayerNorm(nn::LayerNormOptions({16})));
    fc2 = register_module("fc2", nn::Linear(16, 24));
    bn = register_module("bn", nn::BatchNorm1d(24));
    fc3 = register_module("fc3", nn::Linear(24, 4));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(ln(fc1(x)));
    x = torch::relu(bn(fc2(x)));
    return fc3(x);
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 10}); }
  nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
  nn::LayerNorm ln{nullptr};
  nn::BatchNorm1d bn{nullptr};
};

/// Transformer-style block on [batch, tokens, dim]: pre-LayerNorm attention (single head, from
/// Linear projections and softmax) and a GELU MLP, both residual. As in the paper's ViT, only
/// the MLP's hidden units are prunable.
struct TransformerBlock : TestModel {
  TransformerBlock() {
    ln1 = register_module("ln1", nn::LayerNorm(nn::LayerNormOptions({16})));
    qkv = register_module("qkv", nn::Linear(16, 48));
    out = register_module("out", nn::Linear(16, 16));
    ln2 = register_module("ln2", nn::LayerNorm(nn::LayerNormOptions({16})));
    fc1 = register_module("fc1", nn::Linear(16, 32));
    fc2 = register_module("fc2", nn::Linear(32, 16));
    head = register_module("head", nn::Linear(16, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    auto parts = qkv(ln1(x)).chunk(3, -1);
    auto attention = torch::softmax(torch::matmul(parts[0], parts[1].transpose(1, 2)) / 4.0, -1);
    x = x + out(torch::matmul(attention, parts[2]));
    x = x + fc2(torch::dropout(torch::gelu(fc1(ln2(x))), dropout, is_training()));
    return head(x.mean(1));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 5, 16}); }
  nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  nn::Linear qkv{nullptr}, out{nullptr}, fc1{nullptr}, fc2{nullptr}, head{nullptr};
};

/// A pre-norm transformer block built from LibTorch's own torch::nn::MultiheadAttention (whose
/// projections are raw parameters, not Linear modules), then an MLP: its hidden units are the
/// ones DemP prunes in ViTs.
struct AttentionBlock : TestModel {
  AttentionBlock() {
    ln1 = register_module("ln1", nn::LayerNorm(nn::LayerNormOptions({16})));
    attention =
        register_module("attention", nn::MultiheadAttention(nn::MultiheadAttentionOptions(16, 4)));
    ln2 = register_module("ln2", nn::LayerNorm(nn::LayerNormOptions({16})));
    fc1 = register_module("fc1", nn::Linear(16, 32));
    fc2 = register_module("fc2", nn::Linear(32, 16));
    head = register_module("head", nn::Linear(16, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    auto h = ln1(x).transpose(0, 1);  // MultiheadAttention takes [L, N, E]
    x = x + std::get<0>(attention(h, h, h)).transpose(0, 1);
    x = x + fc2(torch::gelu(fc1(ln2(x))));
    return head(x.mean(1));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 5, 16}); }
  nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  nn::MultiheadAttention attention{nullptr};
  nn::Linear fc1{nullptr}, fc2{nullptr}, head{nullptr};
};

/// GroupNorm: units are whole groups of channels.
struct GroupNormNet : TestModel {
  GroupNormNet() {
    c1 = register_module("c1", conv(3, 12));
    gn = register_module("gn", nn::GroupNorm(4, 12));
    c2 = register_module("c2", conv(12, 6));
    bn = register_module("bn", nn::BatchNorm2d(6));
    head = register_module("head", nn::Linear(6, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(gn(c1(x)));
    x = torch::relu(bn(c2(x)));
    return head(torch::adaptive_avg_pool2d(x, {1, 1}).flatten(1));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 6, 6}); }
  nn::Conv2d c1{nullptr}, c2{nullptr};
  nn::GroupNorm gn{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::Linear head{nullptr};
};

/// Global average pooling written as x.mean({2, 3}) on a map as wide as the channels (8 channels,
/// 8×8): the sizes alone cannot say which dims the mean removed; the autograd node can.
struct EqualSizeMeanNet : TestModel {
  EqualSizeMeanNet() {
    c1 = register_module("c1", conv(3, 8));
    bn = register_module("bn", nn::BatchNorm2d(8));
    head = register_module("head", nn::Linear(8, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    return head(torch::relu(bn(c1(x))).mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 8, 8}); }
  nn::Conv2d c1{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::Linear head{nullptr};
};

/// Channels-last heads: the 8 channels of an 8×8 map permuted to the last dim, a Linear over
/// them, then a mean over the positions; transposed, max-pooled over the positions (amax), into
/// a second Linear; and one position picked by two selects into the first. Every dim but the
/// batch has size 8.
struct ChannelsLastHeadNet : TestModel {
  ChannelsLastHeadNet() {
    c1 = register_module("c1", conv(3, 8));
    bn = register_module("bn", nn::BatchNorm2d(8));
    fc = register_module("fc", nn::Linear(8, 3));
    fc_max = register_module("fc_max", nn::Linear(8, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(bn(c1(x)));
    auto mean_head = fc(x.permute({0, 2, 3, 1})).mean({1, 2});      // [N, H, W, 3] -> [N, 3]
    auto max_head = fc_max(x.transpose(1, 3).amax({1, 2}));         // [N, W, H, C] -> [N, C]
    return mean_head + max_head + fc(x.select(3, 0).select(2, 7));  // [N, C, H] -> [N, C]
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 8, 8}); }
  nn::Conv2d c1{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::Linear fc{nullptr}, fc_max{nullptr};
};

/// Max and min over one dim each, then unbind, on an 8-channel 8×8 map: every dim but the batch
/// has size 8, so only the autograd nodes' saved dims say where the channels went.
struct MaxUnbindNet : TestModel {
  MaxUnbindNet() {
    c1 = register_module("c1", conv(3, 8));
    bn = register_module("bn", nn::BatchNorm2d(8));
    head = register_module("head", nn::Linear(8, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(bn(c1(x)));                                      // [N, C, H, W]
    auto rows = std::get<0>(x.max(2));                               // [N, C, W]
    auto cols = std::get<0>(x.min(3, /*keepdim=*/true)).squeeze(3);  // [N, C, H]
    auto parts = (rows + cols).unbind(2);                            // 8 × [N, C]
    return head(parts[0] + parts[7]);
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 8, 8}); }
  nn::Conv2d c1{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::Linear head{nullptr};
};

/// PReLU after the ReLU that shows deaths, one slope per channel (cut with c1's channels), and a
/// shared slope after c2 (left alone).
struct PReluNet : TestModel {
  PReluNet() {
    c1 = register_module("c1", conv(3, 8));
    bn = register_module("bn", nn::BatchNorm2d(8));
    act1 = register_module("act1", nn::PReLU(nn::PReLUOptions().num_parameters(8).init(0.2)));
    c2 = register_module("c2", conv(8, 6));
    act2 = register_module("act2", nn::PReLU());
    head = register_module("head", nn::Linear(6, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = act1(torch::relu(bn(c1(x))));
    return head(act2(c2(x)).mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 6, 6}); }
  nn::Conv2d c1{nullptr}, c2{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::PReLU act1{nullptr}, act2{nullptr};
  nn::Linear head{nullptr};
};

/// InstanceNorm after c1 (LibTorch runs it as a BatchNorm over [1, N·C, H, W]): with affine
/// parameters and, optionally, running statistics; or with neither (each sample's channel
/// normalized alone).
struct InstanceNormNet : TestModel {
  InstanceNormNet(bool affine, bool track) {
    c1 = register_module("c1", conv(3, 8));
    norm = register_module(
        "norm",
        nn::InstanceNorm2d(nn::InstanceNorm2dOptions(8).affine(affine).track_running_stats(track)));
    c2 = register_module("c2", conv(8, 6));
    head = register_module("head", nn::Linear(6, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(norm(c1(x)));
    return head(torch::relu(c2(x)).mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 6, 6}); }
  nn::Conv2d c1{nullptr}, c2{nullptr};
  nn::InstanceNorm2d norm{nullptr};
  nn::Linear head{nullptr};
};

/// Sub-pixel convolutions: pixel_shuffle(2) makes c1's 16 channels 4 of twice the resolution
/// (so c1's channels go in blocks of 4), pixel_unshuffle(2) spreads each of c2's 6 channels over
/// 4 of c3's inputs.
struct PixelShuffleNet : TestModel {
  PixelShuffleNet() {
    c1 = register_module("c1", conv(3, 16));
    bn = register_module("bn", nn::BatchNorm2d(16));
    c2 = register_module("c2", conv(4, 6));
    c3 = register_module("c3", conv(24, 5));
    head = register_module("head", nn::Linear(5, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::pixel_shuffle(torch::relu(bn(c1(x))), 2);  // [N, 4, 12, 12]
    x = torch::pixel_unshuffle(torch::relu(c2(x)), 2);    // [N, 24, 6, 6]
    return head(torch::relu(c3(x)).mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 6, 6}); }
  nn::Conv2d c1{nullptr}, c2{nullptr}, c3{nullptr};
  nn::BatchNorm2d bn{nullptr};
  nn::Linear head{nullptr};
};

/// Transposed convolutions (output channels on weight dim 1): a stride-2 upsampling one, and a
/// depthwise one whose groups tie each of c2's channels to one of its own.
struct ConvTransposeNet : TestModel {
  ConvTransposeNet() {
    c1 = register_module("c1", conv(3, 8));
    bn1 = register_module("bn1", nn::BatchNorm2d(8));
    up = register_module("up", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(8, 6, 2).stride(2)));
    bn2 = register_module("bn2", nn::BatchNorm2d(6));
    c2 = register_module("c2", conv(6, 4));
    grouped = register_module(
        "grouped", nn::ConvTranspose2d(nn::ConvTranspose2dOptions(4, 4, 3).padding(1).groups(4)));
    head = register_module("head", nn::Linear(4, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(bn1(c1(x)));           // [N, 8, 6, 6]
    x = torch::relu(bn2(up->forward(x)));  // [N, 6, 12, 12]
    x = torch::relu(grouped->forward(torch::relu(c2(x))));
    return head(x.mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 6, 6}); }
  nn::Conv2d c1{nullptr}, c2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::ConvTranspose2d up{nullptr}, grouped{nullptr};
  nn::Linear head{nullptr};
};

/// A 1d sequence model: Conv1d, BatchNorm1d, a mean over time.
struct Conv1dNet : TestModel {
  Conv1dNet() {
    c1 = register_module("c1", nn::Conv1d(nn::Conv1dOptions(3, 8, 3).padding(1).bias(false)));
    bn = register_module("bn", nn::BatchNorm1d(8));
    c2 = register_module("c2", nn::Conv1d(nn::Conv1dOptions(8, 6, 3).padding(1)));
    head = register_module("head", nn::Linear(6, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(c2(torch::relu(bn(c1(x)))));
    return head(x.mean({2}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 16}); }
  nn::Conv1d c1{nullptr}, c2{nullptr};
  nn::BatchNorm1d bn{nullptr};
  nn::Linear head{nullptr};
};

/// A volumetric model: Conv3d, BatchNorm3d, a 1x1x1 Conv3d, a mean over the volume.
struct Conv3dNet : TestModel {
  Conv3dNet() {
    c1 = register_module("c1", nn::Conv3d(nn::Conv3dOptions(3, 4, 3).padding(1).bias(false)));
    bn = register_module("bn", nn::BatchNorm3d(4));
    c2 = register_module("c2", nn::Conv3d(nn::Conv3dOptions(4, 5, 1).bias(false)));
    head = register_module("head", nn::Linear(5, 2));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(c2(torch::relu(bn(c1(x)))));
    return head(x.mean({2, 3, 4}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 4, 4, 4}); }
  nn::Conv3d c1{nullptr}, c2{nullptr};
  nn::BatchNorm3d bn{nullptr};
  nn::Linear head{nullptr};
};

/// A BatchNorm without affine parameters (only its running statistics say which module it is)
/// before an ordinary one.
struct NoAffineNormNet : TestModel {
  NoAffineNormNet() {
    c1 = register_module("c1", conv(3, 8));
    bn1 = register_module("bn1", nn::BatchNorm2d(nn::BatchNormOptions(8).affine(false)));
    c2 = register_module("c2", conv(8, 6));
    bn2 = register_module("bn2", nn::BatchNorm2d(6));
    head = register_module("head", nn::Linear(6, 3));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = torch::relu(bn2(c2(torch::relu(bn1(c1(x))))));
    return head(x.mean({2, 3}));
  }
  torch::Tensor example_input(int64_t batch) override { return torch::randn({batch, 3, 6, 6}); }
  nn::Conv2d c1{nullptr}, c2{nullptr};
  nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  nn::Linear head{nullptr};
};

}  // namespace demon::testing
