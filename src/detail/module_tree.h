#pragma once

#include <torch/nn/module.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace demon::detail {

/// Every module of `model` with its qualified name, `model` itself first under "". Unlike
/// Module::named_modules(), it also works for a model that no std::shared_ptr holds (a module held
/// by value): LibTorch's include-self variants throw there. The root entry shares ownership when
/// a shared_ptr holds the model, and is a non-owning alias otherwise.
inline std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> named_modules_of(
    torch::nn::Module& model) {
  std::shared_ptr<torch::nn::Module> root = model.weak_from_this().lock();
  if (!root) {
    root = std::shared_ptr<torch::nn::Module>(std::shared_ptr<torch::nn::Module>(), &model);
  }
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> modules = {{"", root}};
  for (const auto& item : model.named_modules(/*name_prefix=*/"", /*include_self=*/false)) {
    modules.emplace_back(item.key(), item.value());
  }
  return modules;
}

}  // namespace demon::detail
