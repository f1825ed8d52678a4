#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "demon/errors.h"
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

// Weights of the entries of two scales (0 exempts one); every other scale keeps weight 1.
const std::map<std::string, std::vector<double>> kWeights = {{"bn2d.weight", {0.0, 0.5, 2.0}},
                                                             {"ln.weight", {1, 0, 3, 0.25, 4}}};

torch::Tensor weights_of(const std::string& name, const torch::Tensor& scale) {
  const auto found = kWeights.find(name);
  return found == kWeights.end() ? torch::ones_like(scale)
                                 : torch::tensor(found->second, scale.options());
}

TEST(RegularizerTest, WeightsScaleThePressureOfEachEntry) {
  for (const auto kind : {demon::Regularizer::kLasso, demon::Regularizer::kL2}) {
    ManyNorms model;
    fill(model);
    const auto before = grads_of(model);
    demon::ScaleRegularizer regularizer(*model, kind);
    regularizer.set_weights(kWeights);
    regularizer.apply(0.3);
    for (const auto& item : model->named_parameters()) {
      const auto& name = item.key();
      const auto& p = item.value();
      const auto term = kind == demon::Regularizer::kL2 ? p.detach() : p.detach().sign();
      const auto expected = kScaleNames.count(name)
                                ? before.at(name) + 0.3 * weights_of(name, p) * term
                                : before.at(name);
      EXPECT_TRUE(torch::allclose(p.grad(), expected, 1e-6, 1e-7))
          << to_string(kind) << " " << name << ": " << p.grad() << " vs " << expected;
    }
    // An empty map makes the pressure uniform again.
    fill(model);
    regularizer.set_weights({});
    regularizer.apply(0.3);
    const auto scale = model->named_parameters()["ln.weight"];
    const auto term = kind == demon::Regularizer::kL2 ? scale.detach() : scale.detach().sign();
    EXPECT_TRUE(torch::allclose(scale.grad(), before.at("ln.weight") + 0.3 * term, 1e-6, 1e-7));
  }
}

TEST(RegularizerTest, WeightsOfAMultiDimensionalScaleGoAlongItsFirstDim) {
  nn::LayerNorm norm(nn::LayerNormOptions({2, 3}));
  {
    torch::NoGradGuard no_grad;
    norm->weight.copy_(torch::arange(6, torch::kFloat).sub(2.5).view({2, 3}));
    norm->weight.mutable_grad() = torch::zeros({2, 3});
  }
  demon::ScaleRegularizer regularizer(*norm, demon::Regularizer::kLasso);
  regularizer.set_weights({{"weight", {0.0, 2.0}}});
  regularizer.apply(0.5);
  EXPECT_TRUE(torch::equal(norm->weight.grad(),
                           torch::tensor({0.0F, 0.0F, 0.0F, 1.0F, 1.0F, 1.0F}).view({2, 3})))
      << norm->weight.grad();
}

TEST(RegularizerTest, BadWeightsAreRefusedAndTheOldOnesKept) {
  ManyNorms model;
  demon::ScaleRegularizer regularizer(*model, demon::Regularizer::kLasso);
  regularizer.set_weights(kWeights);
  const std::vector<std::pair<std::map<std::string, std::vector<double>>, std::string>> bad = {
      {{{"bn2d.weight", {1.0, 1.0}}}, "\"bn2d.weight\" has 3 entries along dim 0, got 2 weights"},
      {{{"bn2d.weight", {1.0, -0.5, 1.0}}}, "weight 1 of \"bn2d.weight\" must be finite and >= 0"},
      {{{"gn.weight", {1.0, NAN, 1.0, 1.0}}}, "weight 1 of \"gn.weight\" must be finite"},
      {{{"bn2d.weight", {1.0, 1.0, 1.0}}, {"conv.weight", {1.0}}},
       "no normalization scale named \"conv.weight\""},
  };
  for (const auto& [weights, message] : bad) {
    try {
      regularizer.set_weights(weights);
      ADD_FAILURE() << "accepted; expected: " << message;
    } catch (const demon::ValueError& error) {
      EXPECT_NE(std::string(error.what()).find(message), std::string::npos) << error.what();
    }
  }
  // The weights set before still hold.
  fill(model);
  const auto before = grads_of(model);
  regularizer.apply(0.3);
  const auto scale = model->named_parameters()["bn2d.weight"];
  EXPECT_TRUE(torch::allclose(
      scale.grad(),
      before.at("bn2d.weight") + 0.3 * weights_of("bn2d.weight", scale) * scale.sign(), 1e-6,
      1e-7));
}

// A cut shrinks a scale; weights set before it no longer fit, and applying them is an error that
// names the scale, not a broadcast into the wrong entries.
TEST(RegularizerTest, WeightsForAnOldShapeAreAnError) {
  ManyNorms model;
  fill(model);
  demon::ScaleRegularizer regularizer(*model, demon::Regularizer::kLasso);
  regularizer.set_weights(kWeights);
  auto scale = model->named_parameters()["bn2d.weight"];
  {
    torch::NoGradGuard no_grad;
    scale.set_data(scale.detach().slice(0, 0, 2).clone());
    scale.mutable_grad() = torch::zeros({2});
  }
  try {
    regularizer.apply(0.1);
    ADD_FAILURE() << "weights of the old shape were applied";
  } catch (const demon::StateError& error) {
    EXPECT_NE(std::string(error.what()).find("\"bn2d.weight\" were set for another shape"),
              std::string::npos)
        << error.what();
  }
  regularizer.set_weights({{"bn2d.weight", {1.0, 0.0}}});
  EXPECT_NO_THROW(regularizer.apply(0.1));
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
