#pragma once

#include <torch/nn/module.h>

#include <map>
#include <string>
#include <vector>

#include "demon/options.h"

namespace demon {

/// A normalization layer's scale parameter (BatchNorm γ, LayerNorm / GroupNorm weight, ...).
struct NormScale {
  std::string name;     ///< the parameter's name in the model, e.g. "layer1.0.bn1.weight"
  torch::Tensor scale;  ///< the parameter itself (same TensorImpl as in the model)
};

/// Every affine scale of a normalization layer in `model`, in named_modules() order:
/// BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, LayerNorm and GroupNorm. Layers without affine
/// parameters have no scale and are skipped.
std::vector<NormScale> find_norm_scales(const torch::nn::Module& model);

/// DemP's pressure on normalization scales: before the optimizer steps, Lasso adds λ·sign(γ)
/// and L2 adds λ·γ to the gradient of every scale. The term is that of a *sum* over all scales
/// (Σ|γ| or ½Σγ²), not a mean, as in the reference code. Other parameters are never touched.
class ScaleRegularizer {
 public:
  ScaleRegularizer(const torch::nn::Module& model, Regularizer kind);

  /// Adds the regularizer's gradient, scaled by `lambda`, to each scale whose gradient is
  /// defined, in one fused pass per device and dtype. No-op for kNone or lambda == 0.
  void apply(double lambda) const;

  /// Σ|γ| (Lasso) or ½Σγ² (L2) over all scales, unscaled by λ; 0 for kNone. Synchronizes.
  double penalty() const;

  /// Per-entry weights of the pressure: per scale (by name), one factor per index along its first
  /// dimension (0 exempts an entry). Scales not named keep weight 1; an empty map makes the
  /// pressure uniform again. Replaces the weights set before; they refer to the scales' current
  /// shapes, so a cut must be followed by new weights (DemonPruner does it). Throws
  /// demon::ValueError for a wrong count or a negative or non-finite weight.
  void set_weights(const std::map<std::string, std::vector<double>>& weights);

  Regularizer kind() const noexcept { return kind_; }
  const std::vector<NormScale>& scales() const noexcept { return scales_; }

 private:
  Regularizer kind_;
  std::vector<NormScale> scales_;
  // Per scale (same order), its entries' weights in the scale's shape; empty when uniform.
  std::vector<torch::Tensor> weights_;
};

}  // namespace demon
