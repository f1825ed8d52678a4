#include "demon/gradient_scale.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "demon/errors.h"
#include "demon/regularizer.h"

namespace demon {

GradientScale::GradientScale(int64_t until_step) : until_(std::max<int64_t>(1, until_step)) {}

void GradientScale::observe(const std::vector<NormScale>& scales) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat;
  for (const auto& entry : scales) {
    const torch::Tensor& grad = entry.scale.grad();
    if (!grad.defined()) {
      continue;
    }
    // One device and dtype for cat: the first gradient's (a model split over devices or dtypes
    // pays a copy here).
    flat.push_back(flat.empty() ? grad.reshape({-1})
                                : grad.reshape({-1}).to(flat.front().options()));
  }
  if (flat.empty()) {
    return;
  }
  // A non-finite gradient (nonfinite_gradients "off") counts as 0 rather than poisoning the sum.
  const torch::Tensor mean =
      torch::nan_to_num(torch::cat(flat).abs().mean(torch::kDouble), 0.0, 0.0, 0.0);
  if (!sum_.defined()) {
    sum_ = torch::zeros_like(mean);
  } else if (sum_.device() != mean.device()) {
    sum_ = sum_.to(mean.device());  // a model moved, or state restored onto the CPU
  }
  sum_.add_(mean);
  ++observations_;
  if (observations_ == 1) {
    refresh();
  }
}

void GradientScale::refresh() {
  if (observations_ > 0) {
    value_ = sum_.item<double>() / static_cast<double>(observations_);
  }
}

nlohmann::json GradientScale::to_json() const {
  return {{"until", until_},
          {"observations", observations_},
          {"sum", sum_.defined() ? sum_.item<double>() : 0.0},
          {"value", value_}};
}

void GradientScale::load_json(const nlohmann::json& state) {
  const auto fail = [](const std::string& why) {
    throw ValueError("demon::GradientScale::load_json: " + why);
  };
  if (!state.is_object()) {
    fail("expected an object, got " + state.dump());
  }
  for (const char* key : {"until", "observations", "sum", "value"}) {
    if (!state.contains(key) || !state.at(key).is_number()) {
      fail(std::string("\"") + key + "\" is missing or not a number");
    }
  }
  const auto until = state.at("until").get<int64_t>();
  const auto observations = state.at("observations").get<int64_t>();
  const auto sum = state.at("sum").get<double>();
  const auto value = state.at("value").get<double>();
  if (until != until_) {
    fail("it measured until step " + std::to_string(until) + ", these options until " +
         std::to_string(until_));
  }
  if (observations < 0 || !std::isfinite(sum) || sum < 0.0 || !std::isfinite(value) ||
      value < 0.0) {
    fail("damaged values " + state.dump());
  }
  torch::Tensor restored;
  if (observations > 0) {
    const torch::Device device = sum_.defined() ? sum_.device() : torch::Device(torch::kCPU);
    restored = torch::full({}, sum, torch::TensorOptions().dtype(torch::kDouble).device(device));
  }
  sum_ = restored;
  observations_ = observations;
  value_ = value;
}

}  // namespace demon
