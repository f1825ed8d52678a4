// Linear: y = x W^T + b, W [out, in].

#include <torch/nn/modules/linear.h>

#include "layers/layer_spec.h"

namespace demon::detail {

void add_linear_specs(std::vector<LayerSpec>& specs) {
  LayerSpec spec;
  spec.name = "Linear";
  spec.kind = LayerKind::kLinear;
  spec.matches = is_module_of_type<torch::nn::LinearImpl>;
  spec.weight_out_dim = 0;
  spec.weight_in_dim = 1;
  spec.width = [](const torch::nn::Module& m) {
    return dynamic_cast<const torch::nn::LinearImpl&>(m).weight.size(0);
  };
  spec.sync_options = [](torch::nn::Module& m) {
    auto& linear = dynamic_cast<torch::nn::LinearImpl&>(m);
    linear.options.out_features(linear.weight.size(0));
    linear.options.in_features(linear.weight.size(1));
  };
  specs.push_back(spec);
}

}  // namespace demon::detail
