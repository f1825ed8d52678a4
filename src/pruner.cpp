#include "demon/pruner.h"

#include <torch/optim/lbfgs.h>

#include <stdexcept>
#include <utility>

namespace demon {
namespace {

template <typename T>
std::shared_ptr<T> require_non_null(std::shared_ptr<T> pointer, const char* what) {
  if (!pointer) {
    throw std::invalid_argument(std::string("demon::DemonPruner: ") + what + " is null");
  }
  return pointer;
}

const DemonOptions& validated(const DemonOptions& options) {
  options.validate();
  return options;
}

std::vector<torch::Tensor> optimizer_params(const torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> params;
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& param : group.params()) {
      params.push_back(param);
    }
  }
  return params;
}

}  // namespace

DemonPruner::DemonPruner(std::shared_ptr<torch::nn::Module> model,
                         std::shared_ptr<torch::optim::Optimizer> optimizer, DemonOptions options)
    : model_(require_non_null(std::move(model), "model")),
      optimizer_(require_non_null(std::move(optimizer), "optimizer")),
      options_(validated(options)),
      lambda_schedule_(options_.lambda_schedule()),
      sigma_schedule_(options_.sigma_schedule()),
      regularizer_(*model_, options_.regularizer()) {
  if (dynamic_cast<torch::optim::LBFGS*>(optimizer_.get()) != nullptr) {
    throw std::invalid_argument(
        "demon::DemonPruner: LBFGS needs a closure per step and keeps flat history; use a "
        "first-order optimizer (SGD, Adam, AdamW, RMSprop, Adagrad)");
  }
  if (options_.noise()) {
    noise_.emplace(optimizer_params(*optimizer_), options_.noise_mode(), options_.seed());
  }
}

void DemonPruner::zero_grad() {
  optimizer_->zero_grad();
}

void DemonPruner::backward(const torch::Tensor& loss) {
  loss.backward();
}

void DemonPruner::step() {
  const double lambda = current_lambda();
  const double sigma = current_sigma();
  // The live mask comes from the loss gradient alone, before the regularizer writes into it.
  if (noise_ && sigma > 0.0) {
    noise_->capture_live_mask();
  }
  regularizer_.apply(lambda);
  optimizer_->step();
  if (noise_ && sigma > 0.0) {
    noise_->apply(sigma);
  }
  ++step_;
}

}  // namespace demon
