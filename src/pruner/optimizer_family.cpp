#include "pruner/optimizer_family.h"

#include <torch/optim/lbfgs.h>

#include "demon/errors.h"
#include "demon/pruner.h"
#include "detail/optimizer_spec.h"

namespace demon::detail {

std::vector<torch::Tensor> optimizer_params(const torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> params;
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& param : group.params())
      params.push_back(param);
  }
  return params;
}

bool is_adaptive(const torch::optim::Optimizer& optimizer) {
  const OptimizerSpec* spec = builtin_optimizer(optimizer);
  return spec != nullptr && spec->adaptive;
}

void require_supported(const torch::optim::Optimizer& optimizer) {
  if (dynamic_cast<const torch::optim::LBFGS*>(&optimizer) != nullptr) {
    throw ValueError(
        "demon::DemonPruner: LBFGS needs a closure per step and keeps flat history; use a "
        "first-order optimizer (SGD, Adam, AdamW, RMSprop, Adagrad)");
  }
}

}  // namespace demon::detail

namespace demon {

double default_controller_max_growth(const torch::optim::Optimizer& optimizer) {
  // An adaptive optimizer's step on γ stays near the learning rate however large λ grows, so λ
  // may grow faster there than under SGD, whose step lr·λ grows with it.
  constexpr double kMaxGrowthAdaptive = 8.0;
  constexpr double kMaxGrowthSgd = 2.0;
  return detail::is_adaptive(optimizer) ? kMaxGrowthAdaptive : kMaxGrowthSgd;
}

}  // namespace demon
