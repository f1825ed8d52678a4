#include "demon/regularizer.h"

#include <map>
#include <set>
#include <utility>

#include "detail/module_tree.h"
#include "layers/layer_spec.h"

namespace demon {

std::vector<NormScale> find_norm_scales(const torch::nn::Module& model) {
  std::vector<NormScale> scales;
  std::set<const void*> seen;  // a module registered twice must be regularized once
  for (const auto& [name, module] :
       detail::named_modules_of(const_cast<torch::nn::Module&>(model))) {
    torch::Tensor scale = detail::norm_scale_of(*module);
    if (scale.defined() && seen.insert(scale.unsafeGetTensorImpl()).second) {
      scales.push_back({name.empty() ? "weight" : name + ".weight", scale});
    }
  }
  return scales;
}

ScaleRegularizer::ScaleRegularizer(const torch::nn::Module& model, Regularizer kind)
    : kind_(kind),
      scales_(kind == Regularizer::kNone ? std::vector<NormScale>{} : find_norm_scales(model)) {}

void ScaleRegularizer::apply(double lambda) const {
  if (kind_ == Regularizer::kNone || lambda == 0.0) {
    return;
  }
  torch::NoGradGuard no_grad;
  // Bucket by device and dtype: each bucket is one foreach launch (plus one sign pass).
  std::map<std::pair<std::string, int>,
           std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>>>
      buckets;
  std::vector<torch::Tensor> masked_scales;
  for (size_t i = 0; i < scales_.size(); ++i) {
    const auto& entry = scales_[i];
    const torch::Tensor& grad = entry.scale.grad();
    if (!grad.defined()) {
      continue;
    }
    if (i < masks_.size() && masks_[i].defined()) {
      // Exempt entries: the term on them is multiplied by 0.
      const torch::Tensor term =
          kind_ == Regularizer::kL2 ? entry.scale.detach() : entry.scale.detach().sign();
      grad.add_(term * masks_[i], lambda);
      continue;
    }
    auto& bucket =
        buckets[{entry.scale.device().str(), static_cast<int>(entry.scale.scalar_type())}];
    bucket.first.push_back(grad);
    bucket.second.push_back(entry.scale);
  }
  for (auto& [key, bucket] : buckets) {
    auto& [grads, scales] = bucket;
    if (kind_ == Regularizer::kL2) {
      torch::_foreach_add_(grads, scales, lambda);
      continue;
    }
    // Lasso: sign(γ) for all scales at once (LibTorch 1.13 has no _foreach_sign).
    std::vector<torch::Tensor> flat;
    std::vector<int64_t> sizes;
    flat.reserve(scales.size());
    for (const auto& scale : scales) {
      flat.push_back(scale.reshape({-1}));
      sizes.push_back(scale.numel());
    }
    std::vector<torch::Tensor> signs = torch::cat(flat).sign_().split_with_sizes(sizes);
    for (size_t i = 0; i < signs.size(); ++i) {
      signs[i] = signs[i].view(scales[i].sizes());
    }
    torch::_foreach_add_(grads, signs, lambda);
  }
}

void ScaleRegularizer::set_exempt(const std::map<std::string, std::vector<int64_t>>& entries) {
  masks_.assign(scales_.size(), torch::Tensor());
  for (size_t i = 0; i < scales_.size(); ++i) {
    const auto found = entries.find(scales_[i].name);
    if (found == entries.end() || found->second.empty())
      continue;
    const auto& scale = scales_[i].scale;
    auto mask = torch::ones({scale.size(0)}, scale.options().requires_grad(false));
    mask.index_fill_(0, torch::tensor(found->second, torch::kLong).to(scale.device()), 0.0);
    std::vector<int64_t> shape(static_cast<size_t>(scale.dim()), 1);
    shape[0] = scale.size(0);
    masks_[i] = mask.view(shape);
  }
}

double ScaleRegularizer::penalty() const {
  torch::NoGradGuard no_grad;
  double total = 0.0;
  for (const auto& entry : scales_) {
    if (kind_ == Regularizer::kLasso) {
      total += entry.scale.abs().sum().item<double>();
    } else if (kind_ == Regularizer::kL2) {
      total += 0.5 * entry.scale.pow(2).sum().item<double>();
    }
  }
  return total;
}

}  // namespace demon
