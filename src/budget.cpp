#include "demon/budget.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "demon/errors.h"
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
  throw ValueError("demon: unknown BudgetMetric");
}

BudgetMetric budget_metric_from_string(const std::string& name) {
  return detail::enum_from_string(
      name, {BudgetMetric::kFlops, BudgetMetric::kParameters, BudgetMetric::kCustom},
      "demon::budget_metric_from_string: unknown budget metric");
}

BudgetController::BudgetController(double target, int64_t by_step, double lambda0, double gain,
                                   double max_growth, int64_t interval, double max_lambda)
    : target_(target),
      by_step_(by_step),
      lambda0_(lambda0),
      gain_(gain),
      max_growth_(max_growth),
      interval_(interval),
      ceiling_(lambda0 * max_lambda),
      lambda_(lambda0) {
  if (!(target > 0.0 && target < 1.0) || by_step < 1 || !(lambda0 > 0.0) || !(gain > 0.0) ||
      !(max_growth >= 1.0 && std::isfinite(max_growth)) || interval < 0 ||
      !(max_lambda >= 1.0 && std::isfinite(max_lambda))) {
    throw ValueError(
        "demon::BudgetController: needs 0 < target < 1, by_step >= 1, lambda0 > 0, gain > 0, "
        "finite max_growth >= 1, interval >= 0 and finite max_lambda >= 1, got " +
        std::to_string(target) + ", " + std::to_string(by_step) + ", " + std::to_string(lambda0) +
        ", " + std::to_string(gain) + ", " + std::to_string(max_growth) + ", " +
        std::to_string(interval) + ", " + std::to_string(max_lambda));
  }
}

void BudgetController::cap(double ceiling) {
  ceiling_ = std::clamp(ceiling, lambda0_ * 1e-3, ceiling_);
  lambda_ = std::min(lambda_, ceiling_);
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
  double log_step = gain_ * (ratio - planned(step)) / (1.0 - target_);
  if (interval_ > 0) {
    const auto elapsed = static_cast<double>(std::max<int64_t>(step - last_step_, 0));
    log_step = std::min(log_step, std::log(max_growth_) * elapsed / interval_);
  }
  last_step_ = std::max(last_step_, step);
  lambda_ = std::clamp(lambda_ * std::exp(log_step), lambda0_ * 1e-3, ceiling_);
  return lambda_;
}

double BudgetController::project(int64_t step, double ratio) {
  if (reached())
    return 0.0;
  if (ratio <= target_)
    return lambda_;  // hold: the units counted dead must stay dead until an event cuts them
  return update(step, ratio);
}

nlohmann::json BudgetController::to_json() const {
  return {{"lambda", lambda_},
          {"ceiling", ceiling_},
          {"last_ratio", last_ratio_},
          {"reached_at", reached_at_},
          {"last_step", last_step_}};
}

void BudgetController::load_json(const nlohmann::json& state) {
  // Read whole before any of it is taken: damaged state changes nothing.
  double lambda, ceiling, last_ratio;
  int64_t reached_at, last_step;
  try {
    lambda = state.at("lambda").get<double>();
    ceiling = state.value("ceiling", ceiling_);
    last_ratio = state.at("last_ratio").get<double>();
    reached_at = state.at("reached_at").get<int64_t>();
    last_step = state.value("last_step", int64_t{0});  // absent in checkpoints before the limit
  } catch (const nlohmann::json::exception& error) {
    throw ValueError(std::string("demon::BudgetController::load_json: damaged state: ") +
                     error.what());
  }
  lambda_ = lambda;
  ceiling_ = ceiling;
  last_ratio_ = last_ratio;
  reached_at_ = reached_at;
  last_step_ = last_step;
}

}  // namespace demon
