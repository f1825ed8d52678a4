// PReLU: max(0, x) + a·min(0, x), with one slope a per channel (dim 1) or one for all. A
// per-channel slope goes with its channel; a shared one stays.

#include <torch/nn/modules/activation.h>

#include "layers/layer_spec.h"

namespace demon::detail {

void add_prelu_specs(std::vector<LayerSpec>& specs) {
  LayerSpec spec;
  spec.name = "PReLU";
  spec.kind = LayerKind::kPReLU;
  spec.matches = is_module_of_type<torch::nn::PReLUImpl>;
  spec.weight_out_dim = 0;
  spec.width = [](const torch::nn::Module& m) {
    return dynamic_cast<const torch::nn::PReLUImpl&>(m).weight.size(0);
  };
  spec.sync_options = [](torch::nn::Module& m) {
    auto& prelu = dynamic_cast<torch::nn::PReLUImpl&>(m);
    prelu.options.num_parameters(prelu.weight.size(0));
  };
  specs.push_back(spec);
}

}  // namespace demon::detail
