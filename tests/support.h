#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace demon::testing {

/// Skips the current test where no CUDA device is present.
#define DEMON_REQUIRE_CUDA()                      \
  do {                                            \
    if (!torch::cuda::is_available()) {           \
      GTEST_SKIP() << "no CUDA device available"; \
    }                                             \
  } while (0)

/// Makes double the default dtype for its scope (parameters of models built in it, tensors drawn
/// in it). A pruned model and its dense twin run different kernels (other channel counts, hence
/// other blockings and reduction orders), so in float they differ by rounding that depends on the
/// CPU, and training amplifies it (Adam divides a near-zero gradient by its own size). In double
/// that rounding stays near 1e-15, so the comparisons can be tight and still hold on any machine.
class DoublePrecision {
 public:
  DoublePrecision() : saved_(torch::get_default_dtype()) {
    torch::set_default_dtype(caffe2::TypeMeta::Make<double>());
  }
  ~DoublePrecision() { torch::set_default_dtype(saved_); }
  DoublePrecision(const DoublePrecision&) = delete;
  DoublePrecision& operator=(const DoublePrecision&) = delete;

 private:
  caffe2::TypeMeta saved_;
};

/// Tolerances of a pruned-versus-dense comparison run in double precision.
constexpr double kTwinRtol = 1e-9;
constexpr double kTwinAtol = 1e-10;

/// A small conv net with BatchNorm: conv-bn-relu ×2, global pool, linear head.
struct SmallCnnImpl : torch::nn::Module {
  SmallCnnImpl() {
    conv1 = register_module(
        "conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1).bias(false)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(8));
    conv2 = register_module(
        "conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 6, 3).padding(1).bias(false)));
    bn2 = register_module("bn2", torch::nn::BatchNorm2d(6));
    fc = register_module("fc", torch::nn::Linear(6, 4));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto h = torch::relu(bn1(conv1(x)));
    h = torch::relu(bn2(conv2(h)));
    h = torch::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
    return fc(h);
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(SmallCnn);

/// A fixed batch for SmallCnn: images [n, 3, 8, 8] and labels in [0, 4).
struct Batch {
  torch::Tensor data, target;
};
inline Batch small_batch(int64_t n = 16, uint64_t seed = 1) {
  torch::manual_seed(seed);
  return {torch::randn({n, 3, 8, 8}), torch::randint(0, 4, {n}, torch::kLong)};
}

/// Every parameter of `module`, cloned (detached), in named_parameters() order.
inline std::vector<torch::Tensor> snapshot(const torch::nn::Module& module) {
  std::vector<torch::Tensor> out;
  for (const auto& p : module.parameters()) {
    out.push_back(p.detach().clone());
  }
  return out;
}

inline void expect_bitwise_equal(const std::vector<torch::Tensor>& a,
                                 const std::vector<torch::Tensor>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i], b[i])) << what << ": tensor " << i << " differs";
  }
}

}  // namespace demon::testing
