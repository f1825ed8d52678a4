// Normalization layers: BatchNorm1d/2d/3d, GroupNorm, LayerNorm, InstanceNorm1d/2d/3d. Their
// weight (when affine) is the scale DemP's regularizer pushes toward zero.

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/instancenorm.h>
#include <torch/nn/modules/normalization.h>

#include "layers/layer_spec.h"

namespace demon::detail {
namespace {

template <typename Norm>
torch::Tensor norm_weight(torch::nn::Module& module) {
  return dynamic_cast<Norm&>(module).weight;
}

// BatchNorm and InstanceNorm: the weight, else the running statistics, else the options.
template <typename Norm>
int64_t norm_features(const torch::nn::Module& module) {
  const auto& norm = dynamic_cast<const Norm&>(module);
  if (norm.weight.defined()) {
    return norm.weight.size(0);
  }
  if (norm.running_mean.defined()) {
    return norm.running_mean.size(0);
  }
  return norm.options.num_features();
}

template <typename BatchNorm>
void sync_batch_norm(torch::nn::Module& module) {
  auto& bn = dynamic_cast<BatchNorm&>(module);
  const auto& reference = bn.running_mean.defined() ? bn.running_mean : bn.weight;
  if (reference.defined()) {
    bn.options.num_features(reference.size(0));
  }
}

template <typename BatchNorm>
LayerSpec batch_norm_spec(const char* name) {
  LayerSpec spec;
  spec.name = name;
  spec.kind = LayerKind::kBatchNorm;
  spec.matches = is_module_of_type<BatchNorm>;
  spec.weight_out_dim = 0;
  spec.channel_buffers = {"running_mean", "running_var"};
  spec.norm_scale = norm_weight<BatchNorm>;
  spec.width = norm_features<BatchNorm>;
  spec.sync_options = sync_batch_norm<BatchNorm>;
  return spec;
}

// InstanceNorm: LibTorch runs it as a BatchNorm over [1, N·C, ...] with its tensors repeated N
// times; the graph's batch_norm rule finds the module through the repeated weight.
template <typename InstanceNorm>
LayerSpec instance_norm_spec(const char* name) {
  LayerSpec spec;
  spec.name = name;
  spec.kind = LayerKind::kInstanceNorm;
  spec.matches = is_module_of_type<InstanceNorm>;
  spec.weight_out_dim = 0;
  spec.channel_buffers = {"running_mean", "running_var"};
  spec.norm_scale = norm_weight<InstanceNorm>;
  spec.width = norm_features<InstanceNorm>;
  spec.sync_options = sync_batch_norm<InstanceNorm>;
  return spec;
}

}  // namespace

void add_norm_specs(std::vector<LayerSpec>& specs) {
  using namespace torch::nn;
  specs.push_back(batch_norm_spec<BatchNorm1dImpl>("BatchNorm1d"));
  specs.push_back(batch_norm_spec<BatchNorm2dImpl>("BatchNorm2d"));
  specs.push_back(batch_norm_spec<BatchNorm3dImpl>("BatchNorm3d"));

  LayerSpec group_norm;
  group_norm.name = "GroupNorm";
  group_norm.kind = LayerKind::kGroupNorm;
  group_norm.matches = is_module_of_type<GroupNormImpl>;
  group_norm.weight_out_dim = 0;
  group_norm.groups = [](const torch::nn::Module& m) {
    return dynamic_cast<const GroupNormImpl&>(m).options.num_groups();
  };
  group_norm.norm_scale = norm_weight<GroupNormImpl>;
  group_norm.width = [](const torch::nn::Module& m) {
    const auto& gn = dynamic_cast<const GroupNormImpl&>(m);
    return gn.weight.defined() ? gn.weight.size(0) : gn.options.num_channels();
  };
  // Whole groups go (the graph makes each group one unit): channels per group stay fixed.
  group_norm.sync_options = [](torch::nn::Module& m) {
    auto& gn = dynamic_cast<GroupNormImpl&>(m);
    if (gn.weight.defined()) {
      const int64_t per_group = gn.options.num_channels() / gn.options.num_groups();
      gn.options.num_channels(gn.weight.size(0));
      gn.options.num_groups(gn.weight.size(0) / per_group);
    }
  };
  specs.push_back(group_norm);

  // LayerNorm's normalized dims are never cut (its statistics span them): nothing to sync.
  LayerSpec layer_norm;
  layer_norm.name = "LayerNorm";
  layer_norm.kind = LayerKind::kLayerNorm;
  layer_norm.matches = is_module_of_type<LayerNormImpl>;
  layer_norm.weight_out_dim = 0;
  layer_norm.norm_scale = norm_weight<LayerNormImpl>;
  layer_norm.width = [](const torch::nn::Module& m) {
    const auto& ln = dynamic_cast<const LayerNormImpl&>(m);
    return ln.weight.defined() ? ln.weight.size(0) : ln.options.normalized_shape().front();
  };
  specs.push_back(layer_norm);

  specs.push_back(instance_norm_spec<InstanceNorm1dImpl>("InstanceNorm1d"));
  specs.push_back(instance_norm_spec<InstanceNorm2dImpl>("InstanceNorm2d"));
  specs.push_back(instance_norm_spec<InstanceNorm3dImpl>("InstanceNorm3d"));
}

}  // namespace demon::detail
