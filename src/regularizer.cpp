#include "demon/regularizer.h"

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>

#include "demon/errors.h"
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
  // Bucket by device and dtype: each bucket is one foreach launch (plus one sign pass for Lasso
  // and one product when the pressure is weighted).
  struct Bucket {
    std::vector<torch::Tensor> grads, scales, weights;
  };
  std::map<std::pair<std::string, int>, Bucket> buckets;
  for (size_t i = 0; i < scales_.size(); ++i) {
    const auto& entry = scales_[i];
    const torch::Tensor& grad = entry.scale.grad();
    if (!grad.defined()) {
      continue;
    }
    auto& bucket =
        buckets[{entry.scale.device().str(), static_cast<int>(entry.scale.scalar_type())}];
    bucket.grads.push_back(grad);
    bucket.scales.push_back(entry.scale);
    if (!weights_.empty()) {
      const torch::Tensor& weight = weights_[i];
      if (weight.sizes() != entry.scale.sizes()) {
        throw StateError("demon::ScaleRegularizer::apply: the weights of \"" + entry.name +
                         "\" were set for another shape; set them again after a cut");
      }
      // A model moved or cast after the weights were set: follow it.
      bucket.weights.push_back(weight.options().type_equal(entry.scale.options()) &&
                                       weight.device() == entry.scale.device()
                                   ? weight
                                   : weight.to(entry.scale.options().requires_grad(false)));
    }
  }
  for (auto& [key, bucket] : buckets) {
    std::vector<torch::Tensor> terms;
    if (kind_ == Regularizer::kL2) {
      terms = bucket.weights.empty() ? bucket.scales
                                     : torch::_foreach_mul(bucket.scales, bucket.weights);
    } else {
      // Lasso: sign(γ) for all scales at once (LibTorch 1.13 has no _foreach_sign).
      std::vector<torch::Tensor> flat;
      std::vector<int64_t> sizes;
      flat.reserve(bucket.scales.size());
      for (const auto& scale : bucket.scales) {
        flat.push_back(scale.reshape({-1}));
        sizes.push_back(scale.numel());
      }
      terms = torch::cat(flat).sign_().split_with_sizes(sizes);
      for (size_t i = 0; i < terms.size(); ++i) {
        terms[i] = terms[i].view(bucket.scales[i].sizes());
      }
      if (!bucket.weights.empty()) {
        torch::_foreach_mul_(terms, bucket.weights);
      }
    }
    torch::_foreach_add_(bucket.grads, terms, lambda);
  }
}

void ScaleRegularizer::set_weights(const std::map<std::string, std::vector<double>>& weights) {
  if (weights.empty()) {
    weights_.clear();
    return;
  }
  std::set<std::string> names;
  for (const auto& entry : scales_)
    names.insert(entry.name);
  for (const auto& item : weights) {
    if (!names.count(item.first)) {
      throw ValueError(
          "demon::ScaleRegularizer::set_weights: the model has no normalization scale named \"" +
          item.first + "\"");
    }
  }
  std::vector<torch::Tensor> result;  // built whole before anything changes
  for (const auto& entry : scales_) {
    const auto found = weights.find(entry.name);
    if (found == weights.end()) {
      result.push_back(torch::ones_like(entry.scale, torch::MemoryFormat::Contiguous));
      continue;
    }
    const auto& values = found->second;
    const int64_t entries = entry.scale.size(0);  // normalization scales have dim >= 1
    if (static_cast<int64_t>(values.size()) != entries) {
      throw ValueError("demon::ScaleRegularizer::set_weights: \"" + entry.name + "\" has " +
                       std::to_string(entries) + " entries along dim 0, got " +
                       std::to_string(values.size()) + " weights");
    }
    for (size_t i = 0; i < values.size(); ++i) {
      if (!std::isfinite(values[i]) || values[i] < 0.0) {
        throw ValueError("demon::ScaleRegularizer::set_weights: weight " + std::to_string(i) +
                         " of \"" + entry.name + "\" must be finite and >= 0, got " +
                         std::to_string(values[i]));
      }
    }
    std::vector<int64_t> shape(static_cast<size_t>(entry.scale.dim()), 1);
    shape[0] = entries;
    result.push_back(torch::tensor(values, torch::kDouble)
                         .to(entry.scale.options().requires_grad(false))
                         .view(shape)
                         .expand(entry.scale.sizes())
                         .contiguous());
  }
  weights_ = std::move(result);
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
