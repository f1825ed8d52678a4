#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>

#include "demon/errors.h"
#include "demon/noise.h"
#include "demon/pruner.h"
#include "support.h"

namespace {

using demon::AsymmetricNoise;
using demon::NoiseMode;

// Two parameters whose gradients are zero on about half of their elements.
struct Params {
  std::vector<torch::Tensor> tensors;
  std::vector<torch::Tensor> live;  // grad != 0
};

Params make_params(torch::Device device = torch::kCPU) {
  torch::manual_seed(3);
  Params out;
  for (auto shape : {std::vector<int64_t>{300, 200}, std::vector<int64_t>{40000}}) {
    auto p = torch::randn(shape, torch::TensorOptions(device)).requires_grad_();
    auto live = torch::rand(shape, torch::TensorOptions(device)) < 0.5;
    p.mutable_grad() = torch::randn(shape, torch::TensorOptions(device)) * live;
    out.tensors.push_back(p);
    out.live.push_back(live);
  }
  return out;
}

// Noise added to each parameter by one capture + apply.
std::vector<torch::Tensor> noise_of(Params& params, NoiseMode mode, uint64_t seed, double sigma) {
  std::vector<torch::Tensor> before;
  for (auto& p : params.tensors) {
    before.push_back(p.detach().clone());
  }
  AsymmetricNoise noise(params.tensors, mode, seed);
  noise.capture_live_mask();
  noise.apply(sigma);
  std::vector<torch::Tensor> delta;
  for (size_t i = 0; i < before.size(); ++i) {
    delta.push_back(params.tensors[i].detach() - before[i]);
  }
  return delta;
}

void expect_live_only_with_std(Params& params, const std::vector<torch::Tensor>& delta,
                               double sigma) {
  std::vector<torch::Tensor> live_values;
  for (size_t i = 0; i < delta.size(); ++i) {
    const auto& live = params.live[i];
    // Exactly nothing where the gradient is zero.
    EXPECT_EQ(delta[i].masked_select(live.logical_not()).abs().max().item<float>(), 0.0f);
    // Something everywhere else.
    EXPECT_EQ(delta[i].masked_select(live).eq(0).sum().item<int64_t>(), 0);
    live_values.push_back(delta[i].masked_select(live).to(torch::kDouble).cpu());
  }
  auto all = torch::cat(live_values);
  const double n = static_cast<double>(all.numel());
  ASSERT_GT(n, 40000);
  // Mean within 5 standard errors of 0, standard deviation within 2% of sigma.
  EXPECT_LT(std::abs(all.mean().item<double>()), 5.0 * sigma / std::sqrt(n));
  EXPECT_NEAR(all.std().item<double>() / sigma, 1.0, 0.02);
}

TEST(NoiseTest, LiveOnlyTouchesExactlyTheNonZeroGradientsWithSigmaStd) {
  Params params = make_params();
  const double sigma = 0.01;
  const auto delta = noise_of(params, NoiseMode::kLiveOnly, 7, sigma);
  expect_live_only_with_std(params, delta, sigma);
}

TEST(NoiseTest, SameSeedSameNoiseOtherSeedOtherNoise) {
  Params a = make_params(), b = make_params(), c = make_params();
  const auto da = noise_of(a, NoiseMode::kLiveOnly, 11, 0.1);
  const auto db = noise_of(b, NoiseMode::kLiveOnly, 11, 0.1);
  const auto dc = noise_of(c, NoiseMode::kLiveOnly, 12, 0.1);
  for (size_t i = 0; i < da.size(); ++i) {
    EXPECT_TRUE(torch::equal(da[i], db[i]));
    EXPECT_FALSE(torch::equal(da[i], dc[i]));
  }
}

TEST(NoiseTest, NoiseDoesNotDisturbTheGlobalGenerator) {
  torch::manual_seed(5);
  const auto expected = torch::rand({4});
  torch::manual_seed(5);
  Params params = make_params();  // reseeds to 3 internally
  torch::manual_seed(5);
  noise_of(params, NoiseMode::kLiveOnly, 1, 0.1);
  EXPECT_TRUE(torch::equal(torch::rand({4}), expected));
}

TEST(NoiseTest, AllModeTouchesEveryElement) {
  Params params = make_params();
  const auto delta = noise_of(params, NoiseMode::kAll, 7, 0.01);
  for (const auto& d : delta) {
    EXPECT_EQ(d.eq(0).sum().item<int64_t>(), 0);
  }
}

TEST(NoiseTest, ZeroSigmaDoesNothing) {
  Params params = make_params();
  for (const auto& d : noise_of(params, NoiseMode::kLiveOnly, 7, 0.0)) {
    EXPECT_EQ(d.abs().max().item<float>(), 0.0f);
  }
}

TEST(NoiseTest, ApplyWithoutCaptureIsAnError) {
  Params params = make_params();
  AsymmetricNoise noise(params.tensors, NoiseMode::kLiveOnly, 0);
  EXPECT_THROW(noise.apply(0.1), std::logic_error);
}

TEST(NoiseTest, GeneratorStateRestoresTheStream) {
  Params a = make_params(), b = make_params();
  AsymmetricNoise first(a.tensors, NoiseMode::kAll, 9);
  first.apply(0.1);  // creates and advances the CPU generator
  const auto states = first.generator_states();
  ASSERT_EQ(states.count("cpu"), 1u);
  // From zero, the parameters hold the noise itself.
  torch::NoGradGuard no_grad;
  for (auto* params : {&a, &b}) {
    for (auto& p : params->tensors) {
      p.zero_();
    }
  }
  first.apply(0.1);
  AsymmetricNoise second(b.tensors, NoiseMode::kAll, 123);
  second.set_generator_states(states);
  second.apply(0.1);
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_GT(a.tensors[i].abs().sum().item<float>(), 0.0f);
    EXPECT_TRUE(torch::equal(a.tensors[i], b.tensors[i]));
  }
}

// A checkpoint's generator states replace the noise's, all or nothing: a bad device or state
// changes nothing, and restoring the state of a noise that never drew drops the generators drawn
// since (a refused checkpoint must not leave its random stream behind).
TEST(NoiseTest, SettingGeneratorStatesIsAllOrNothing) {
  Params params = make_params();
  AsymmetricNoise noise(params.tensors, NoiseMode::kAll, 9);
  const auto unused = noise.generator_states();
  EXPECT_TRUE(unused.empty());
  noise.apply(0.1);
  const auto drawn = noise.generator_states();
  ASSERT_EQ(drawn.count("cpu"), 1u);

  EXPECT_THROW(noise.set_generator_states({{"cpu", torch::zeros({3}, torch::kUInt8)}}),
               demon::ValueError);
  EXPECT_THROW(noise.set_generator_states({{"cpu", drawn.at("cpu")}, {"no such device", {}}}),
               demon::ValueError);
  const auto after_errors = noise.generator_states();
  ASSERT_EQ(after_errors.size(), 1u);
  EXPECT_TRUE(torch::equal(after_errors.at("cpu"), drawn.at("cpu")));

  noise.set_generator_states(unused);
  EXPECT_TRUE(noise.generator_states().empty());
  AsymmetricNoise fresh(make_params().tensors, NoiseMode::kAll, 9);
  fresh.apply(0.1);
  noise.apply(0.1);  // the same first draw as a new noise of the same seed
  EXPECT_TRUE(torch::equal(noise.generator_states().at("cpu"), fresh.generator_states().at("cpu")));
}

// A dead unit (BatchNorm γ tiny, β very negative, so the ReLU output is 0 everywhere) has zero
// loss gradient on every weight it owns. Lasso then adds λ·sign(γ) to its γ gradient: the noise
// must still skip it, because the mask is taken before the regularizer.
TEST(NoiseTest, PrunerTakesTheMaskBeforeTheRegularizer) {
  torch::manual_seed(0);
  auto model = torch::nn::Sequential(torch::nn::Linear(4, 3), torch::nn::BatchNorm1d(3),
                                     torch::nn::ReLU(), torch::nn::Linear(3, 2));
  auto* bn = model[1]->as<torch::nn::BatchNorm1d>();
  {
    torch::NoGradGuard no_grad;
    bn->weight[1] = 1e-3;
    bn->bias[1] = -10.0;
  }
  auto optimizer = std::make_shared<torch::optim::SGD>(model->parameters(), 0.1);
  demon::DemonPruner pruner(model.ptr(), optimizer,
                            demon::DemonOptions(10)
                                .schedule(demon::ScheduleKind::kConstant)
                                .lambda_peak(0.5)
                                .sigma_peak(0.01));
  const auto before = demon::testing::snapshot(*model);
  pruner.zero_grad();
  pruner.backward(model->forward(torch::randn({8, 4})).pow(2).mean());
  ASSERT_EQ(bn->weight.grad()[1].item<float>(), 0.0f);
  pruner.step();

  auto* fc1 = model[0]->as<torch::nn::Linear>();
  auto* fc2 = model[3]->as<torch::nn::Linear>();
  // γ moved by exactly the SGD step on the Lasso term, with no noise.
  EXPECT_EQ(bn->weight[1].item<float>(), before[2][1].item<float>() - 0.1f * 0.5f);
  EXPECT_EQ(bn->bias[1].item<float>(), -10.0f);
  EXPECT_TRUE(torch::equal(fc1->weight[1], before[0][1]));
  EXPECT_TRUE(torch::equal(fc1->bias[1], before[1][1]));
  EXPECT_TRUE(torch::equal(fc2->weight.select(1, 1), before[4].select(1, 1)));
}

TEST(NoiseTest, LiveOnlyOnCuda) {
  DEMON_REQUIRE_CUDA();
  Params params = make_params(torch::kCUDA);
  const auto delta = noise_of(params, NoiseMode::kLiveOnly, 7, 0.01);
  expect_live_only_with_std(params, delta, 0.01);
  Params again = make_params(torch::kCUDA);
  const auto repeat = noise_of(again, NoiseMode::kLiveOnly, 7, 0.01);
  for (size_t i = 0; i < delta.size(); ++i) {
    EXPECT_TRUE(torch::equal(delta[i], repeat[i]));
  }
}

}  // namespace
