#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>
#include <set>

#include "demon/regularizer.h"
#include "support.h"

namespace {

namespace nn = torch::nn;

// Every normalization type the regularizer knows, affine and not, beside ordinary layers.
struct ManyNormsImpl : nn::Module {
  ManyNormsImpl() {
    register_module("conv", nn::Conv2d(nn::Conv2dOptions(3, 4, 3)));
    register_module("fc", nn::Linear(4, 4));
    register_module("bn1d", nn::BatchNorm1d(4));
    register_module("bn2d", nn::BatchNorm2d(3));
    register_module("bn3d", nn::BatchNorm3d(2));
    register_module("bn_plain", nn::BatchNorm2d(nn::BatchNorm2dOptions(5).affine(false)));
    register_module("ln", nn::LayerNorm(nn::LayerNormOptions({5})));
    register_module("ln_plain", nn::LayerNorm(nn::LayerNormOptions({5}).elementwise_affine(false)));
    register_module("gn", nn::GroupNorm(2, 4));
    register_module("in2d", nn::InstanceNorm2d(nn::InstanceNorm2dOptions(3).affine(true)));
    register_module("in1d_plain", nn::InstanceNorm1d(3));
    auto block = register_module("block", nn::Sequential(nn::Linear(2, 2), nn::BatchNorm1d(2)));
  }
};
TORCH_MODULE(ManyNorms);

const std::set<std::string> kScaleNames = {"bn1d.weight",   "bn2d.weight", "bn3d.weight",
                                           "ln.weight",     "gn.weight",   "in2d.weight",
                                           "block.1.weight"};

// Fills every parameter with distinct values (negative, zero and positive scales) and every
// gradient with 0.25.
void fill(ManyNorms& model) {
  torch::NoGradGuard no_grad;
  int64_t k = 0;
  for (auto& p : model->parameters()) {
    p.copy_(torch::arange(p.numel(), torch::kFloat).sub_(1.0 + k++).view_as(p));
    p.mutable_grad() = torch::full_like(p, 0.25);
  }
}

std::map<std::string, torch::Tensor> grads_of(ManyNorms& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : model->named_parameters()) {
    out[item.key()] = item.value().grad().clone();
  }
  return out;
}

TEST(RegularizerTest, FindsEveryAffineNormScaleAndNothingElse) {
  ManyNorms model;
  std::set<std::string> found;
  auto params = model->named_parameters();
  for (const auto& scale : demon::find_norm_scales(*model)) {
    found.insert(scale.name);
    // The very same tensor as the model's parameter, not a copy.
    EXPECT_EQ(scale.scale.unsafeGetTensorImpl(), params[scale.name].unsafeGetTensorImpl());
  }
  EXPECT_EQ(found, kScaleNames);
}

TEST(RegularizerTest, LassoAddsLambdaTimesSignToScalesOnly) {
  ManyNorms model;
  fill(model);
  const auto before = grads_of(model);
  demon::ScaleRegularizer regularizer(*model, demon::Regularizer::kLasso);
  regularizer.apply(0.3);
  for (const auto& item : model->named_parameters()) {
    const auto& name = item.key();
    const auto& p = item.value();
    if (kScaleNames.count(name)) {
      const auto expected = before.at(name) + 0.3 * p.sign();
      EXPECT_TRUE(torch::equal(p.grad(), expected)) << name;
      // Some scales are exactly 0: sign(0) = 0 leaves their gradient alone.
      EXPECT_TRUE(
          torch::equal(p.grad().masked_select(p.eq(0)), before.at(name).masked_select(p.eq(0))))
          << name;
    } else {
      EXPECT_TRUE(torch::equal(p.grad(), before.at(name))) << name << " must not be touched";
    }
  }
}

TEST(RegularizerTest, L2AddsLambdaTimesScale) {
  ManyNorms model;
  fill(model);
  const auto before = grads_of(model);
  demon::ScaleRegularizer(*model, demon::Regularizer::kL2).apply(0.5);
  for (const auto& item : model->named_parameters()) {
    const auto& p = item.value();
    const auto expected =
        kScaleNames.count(item.key()) ? before.at(item.key()) + 0.5 * p : before.at(item.key());
    EXPECT_TRUE(torch::equal(p.grad(), expected)) << item.key();
  }
}

TEST(RegularizerTest, NoneAndZeroLambdaChangeNothing) {
  ManyNorms model;
  fill(model);
  const auto before = grads_of(model);
  demon::ScaleRegularizer(*model, demon::Regularizer::kNone).apply(1.0);
  demon::ScaleRegularizer(*model, demon::Regularizer::kLasso).apply(0.0);
  for (const auto& item : model->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value().grad(), before.at(item.key()))) << item.key();
  }
  EXPECT_TRUE(demon::ScaleRegularizer(*model, demon::Regularizer::kNone).scales().empty());
}

TEST(RegularizerTest, ScalesWithoutGradientAreSkipped) {
  ManyNorms model;
  demon::ScaleRegularizer regularizer(*model, demon::Regularizer::kLasso);
  EXPECT_NO_THROW(regularizer.apply(0.1));
  for (const auto& p : model->parameters()) {
    EXPECT_FALSE(p.grad().defined());
  }
}

TEST(RegularizerTest, PenaltyIsSumOverAllScales) {
  ManyNorms model;
  fill(model);
  double abs_sum = 0.0, square_sum = 0.0;
  for (const auto& item : model->named_parameters()) {
    if (kScaleNames.count(item.key())) {
      abs_sum += item.value().abs().sum().item<double>();
      square_sum += item.value().pow(2).sum().item<double>();
    }
  }
  EXPECT_DOUBLE_EQ(demon::ScaleRegularizer(*model, demon::Regularizer::kLasso).penalty(), abs_sum);
  EXPECT_DOUBLE_EQ(demon::ScaleRegularizer(*model, demon::Regularizer::kL2).penalty(),
                   0.5 * square_sum);
}

TEST(RegularizerTest, LassoOnCuda) {
  DEMON_REQUIRE_CUDA();
  ManyNorms model;
  model->to(torch::kCUDA);
  fill(model);
  const auto before = grads_of(model);
  demon::ScaleRegularizer(*model, demon::Regularizer::kLasso).apply(0.3);
  for (const auto& item : model->named_parameters()) {
    const auto& p = item.value();
    const auto expected = kScaleNames.count(item.key()) ? before.at(item.key()) + 0.3 * p.sign()
                                                        : before.at(item.key());
    EXPECT_TRUE(p.grad().is_cuda());
    EXPECT_TRUE(torch::allclose(p.grad(), expected, 0.0, 1e-7)) << item.key();
  }
}

}  // namespace
