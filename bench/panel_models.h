#pragma once

// The models of bench_panel: small networks of the kinds users bring, none of which demon's
// defaults were tuned on, each with the optimizer and learning-rate schedule its kind is
// usually trained with.

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace panel {

/// How a panel model is usually trained.
struct Recipe {
  std::string optimizer;  ///< "sgd" (momentum 0.9) or "adamw"
  double lr = 0.0;
  double weight_decay = 0.0;
  std::string lr_schedule;  ///< "constant", "cosine" or "one_cycle" (over the whole run)
};

struct PanelModel {
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  Recipe recipe;
};

/// The names make_model() knows: quickstart, resnet18_w8, vgg, mlp, mobilenet.
const std::vector<std::string>& model_names();

/// A freshly initialized model for `side`×`side` RGB images and 10 classes. Throws
/// std::invalid_argument for an unknown name.
PanelModel make_model(const std::string& name, int64_t side);

/// The learning rate of `recipe` at `step` of `total` steps.
double learning_rate(const Recipe& recipe, int64_t step, int64_t total);

}  // namespace panel
