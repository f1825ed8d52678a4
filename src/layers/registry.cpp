#include "layers/layer_spec.h"

namespace demon::detail {

const std::vector<LayerSpec>& layer_specs() {
  static const std::vector<LayerSpec> specs = [] {
    std::vector<LayerSpec> all;
    add_conv_specs(all);
    add_linear_specs(all);
    add_norm_specs(all);
    add_selection_specs(all);
    add_prelu_specs(all);
    return all;
  }();
  return specs;
}

const LayerSpec* find_layer_spec(const torch::nn::Module& module) {
  for (const auto& spec : layer_specs()) {
    if (spec.matches(module)) {
      return &spec;
    }
  }
  return nullptr;
}

torch::Tensor norm_scale_of(torch::nn::Module& module) {
  const LayerSpec* spec = find_layer_spec(module);
  return spec != nullptr && spec->norm_scale != nullptr ? spec->norm_scale(module)
                                                        : torch::Tensor();
}

void sync_module_options(torch::nn::Module& module) {
  const LayerSpec* spec = find_layer_spec(module);
  if (spec != nullptr && spec->sync_options != nullptr) {
    spec->sync_options(module);
  }
}

}  // namespace demon::detail
