#include "demon/budget.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "detail/enum_names.h"

namespace demon {

std::string to_string(BudgetMetric metric) {
  switch (metric) {
    case BudgetMetric::kFlops:
      return "flops";
    case BudgetMetric::kParameters:
      return "parameters";
    case BudgetMetric::kCustom:
      return "custom";
  }
  throw std::invalid_argument("demon: unknown BudgetMetric");
}

BudgetMetric budget_metric_from_string(const std::string& name) {
  return detail::enum_from_string(
      name, {BudgetMetric::kFlops, BudgetMetric::kParameters, BudgetMetric::kCustom},
      "unknown budget metric");
}

BudgetController::BudgetController(double target, int64_t by_step, double lambda0, double gain)
    : target_(target), by_step_(by_step), lambda0_(lambda0), gain_(gain), lambda_(lambda0) {
  if (!(target > 0.0 && target < 1.0) || by_step < 1 || !(lambda0 > 0.0) || !(gain > 0.0)) {
    throw std::invalid_argument(
        "demon::BudgetController: needs 0 < target < 1, by_step >= 1, lambda0 > 0 and gain > 0, "
        "got " +
        std::to_string(target) + ", " + std::to_string(by_step) + ", " + std::to_string(lambda0) +
        ", " + std::to_string(gain));
  }
}

double BudgetController::planned(int64_t step) const {
  if (step >= by_step_)
    return target_;
  constexpr double kPi = 3.14159265358979323846;
  const double progress = static_cast<double>(std::max<int64_t>(step, 0)) / by_step_;
  return target_ + (1.0 - target_) * 0.5 * (1.0 + std::cos(kPi * progress));
}

double BudgetController::update(int64_t step, double ratio) {
  last_ratio_ = ratio;
  if (reached())
    return 0.0;
  if (ratio <= target_) {
    reached_at_ = step;
    return 0.0;
  }
  const double error = (ratio - planned(step)) / (1.0 - target_);
  lambda_ = std::clamp(lambda_ * std::exp(gain_ * error), lambda0_ * 1e-3, lambda0_ * 1e3);
  return lambda_;
}

double BudgetController::project(int64_t step, double ratio) {
  if (reached())
    return 0.0;
  if (ratio <= target_)
    return lambda_;  // hold: the units counted dead must stay dead until an event cuts them
  return update(step, ratio);
}

nlohmann::json BudgetController::state() const {
  return {{"lambda", lambda_}, {"last_ratio", last_ratio_}, {"reached_at", reached_at_}};
}

void BudgetController::set_state(const nlohmann::json& state) {
  lambda_ = state.at("lambda");
  last_ratio_ = state.at("last_ratio");
  reached_at_ = state.at("reached_at");
}

}  // namespace demon
