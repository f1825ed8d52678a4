// What demon knows of each built-in optimizer (src/detail/optimizer_spec.h), row by row.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "detail/optimizer_spec.h"

namespace {

using demon::detail::builtin_optimizer;
using demon::detail::NeededState;

std::vector<std::string> names(const NeededState& needed) {
  std::vector<std::string> out;
  for (const auto& [name, tensor] : needed)
    out.emplace_back(name);
  return out;
}

TEST(OptimizerSpecTest, EachBuiltInOptimizerHasItsRowAndFamily) {
  auto p = torch::zeros({3}, torch::requires_grad());
  using namespace torch::optim;
  const std::vector<std::pair<std::shared_ptr<Optimizer>, std::pair<std::string, bool>>> cases = {
      {std::make_shared<SGD>(std::vector<torch::Tensor>{p}, SGDOptions(0.1)), {"SGD", false}},
      {std::make_shared<Adam>(std::vector<torch::Tensor>{p}), {"Adam", true}},
      {std::make_shared<AdamW>(std::vector<torch::Tensor>{p}), {"AdamW", true}},
      {std::make_shared<RMSprop>(std::vector<torch::Tensor>{p}), {"RMSprop", true}},
      {std::make_shared<Adagrad>(std::vector<torch::Tensor>{p}), {"Adagrad", true}},
  };
  for (const auto& [optimizer, expected] : cases) {
    const auto* spec = builtin_optimizer(*optimizer);
    ASSERT_NE(spec, nullptr) << expected.first;
    EXPECT_EQ(spec->name, expected.first);
    EXPECT_EQ(spec->adaptive, expected.second) << expected.first;
  }
  LBFGS lbfgs(std::vector<torch::Tensor>{p});
  EXPECT_EQ(builtin_optimizer(lbfgs), nullptr);
}

TEST(OptimizerSpecTest, NeededStateFollowsTheGroupsOptions) {
  auto p = torch::zeros({3}, torch::requires_grad());
  using namespace torch::optim;
  AdamW plain(std::vector<torch::Tensor>{p});
  const auto* spec = builtin_optimizer(plain);
  ASSERT_NE(spec, nullptr);
  AdamWParamState state;
  const auto without = spec->needed_state(state, AdamWOptions().amsgrad(false));
  ASSERT_TRUE(without);
  EXPECT_EQ(names(*without), (std::vector<std::string>{"exp_avg", "exp_avg_sq"}));
  const auto with = spec->needed_state(state, AdamWOptions().amsgrad(true));
  ASSERT_TRUE(with);
  EXPECT_EQ(names(*with), (std::vector<std::string>{"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}));
  // Another optimizer's state is not this row's.
  EXPECT_FALSE(spec->needed_state(SGDParamState(), AdamWOptions()));

  RMSprop rms(std::vector<torch::Tensor>{p});
  const auto* rms_spec = builtin_optimizer(rms);
  ASSERT_NE(rms_spec, nullptr);
  const auto centered =
      rms_spec->needed_state(RMSpropParamState(), RMSpropOptions().momentum(0.9).centered(true));
  ASSERT_TRUE(centered);
  EXPECT_EQ(names(*centered),
            (std::vector<std::string>{"square_avg", "momentum_buffer", "grad_avg"}));
}

TEST(OptimizerSpecTest, SlicersTouchOnlyTheirOwnState) {
  auto p = torch::zeros({4}, torch::requires_grad());
  torch::optim::SGD sgd(std::vector<torch::Tensor>{p}, torch::optim::SGDOptions(0.1));
  const auto* spec = builtin_optimizer(sgd);
  ASSERT_NE(spec, nullptr);
  torch::optim::SGDParamState state;
  state.momentum_buffer(torch::arange(4.0));
  const auto keep_two = [](const torch::Tensor& t) { return t.slice(0, 0, 2); };
  ASSERT_TRUE(spec->slicer(state, keep_two));
  EXPECT_TRUE(state.momentum_buffer().equal(torch::arange(2.0)));
  torch::optim::AdamParamState adam;
  EXPECT_FALSE(spec->slicer(adam, keep_two));
}

}  // namespace
