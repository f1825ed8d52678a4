#include "demon/health.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include "demon/errors.h"

namespace demon {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// JSON has no NaN: an unset level is written as null.
nlohmann::json level_to_json(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

double level_from_json(const nlohmann::json& value) {
  return value.is_null() ? kNaN : value.get<double>();
}

std::string format(const char* pattern, double value) {
  char text[32];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

}  // namespace

std::string HealthEvent::describe() const {
  const double height = first_loss - baseline_loss;
  std::string text = "step " + std::to_string(step) + ": running loss " +
                     format("%.4g", baseline_loss) + " -> " + format("%.4g", loss) + ", " +
                     format("%.0f", height > 0.0 ? 100.0 * (loss - baseline_loss) / height : 0.0) +
                     "% of the way back to the first loss " + format("%.4g", first_loss) +
                     "; λ held at 0 until it recovers, then x" + format("%.3g", lambda_scale);
  if (recovered_at >= 0) {
    text += "; recovered at step " + std::to_string(recovered_at);
  }
  return text;
}

nlohmann::json HealthEvent::to_json() const {
  return {{"step", step},
          {"baseline_loss", baseline_loss},
          {"loss", loss},
          {"first_loss", first_loss},
          {"lambda_scale", lambda_scale},
          {"recovered_at", recovered_at}};
}

HealthEvent HealthEvent::from_json(const nlohmann::json& json) {
  HealthEvent event;
  event.step = json.at("step").get<int64_t>();
  event.baseline_loss = json.at("baseline_loss").get<double>();
  event.loss = json.at("loss").get<double>();
  event.first_loss = json.at("first_loss").get<double>();
  event.lambda_scale = json.at("lambda_scale").get<double>();
  event.recovered_at = json.at("recovered_at").get<int64_t>();
  return event;
}

HealthGuard::HealthGuard(double rise, int64_t window, double backoff)
    : rise_(rise),
      window_(window),
      backoff_(backoff),
      last_(kNaN),
      baseline_(kNaN),
      first_level_(kNaN) {
  if (!(std::isfinite(rise) && rise > 0.0)) {
    throw ValueError("demon::HealthGuard: rise must be finite and > 0, got " +
                     std::to_string(rise));
  }
  if (window < 1) {
    throw ValueError("demon::HealthGuard: window must be >= 1, got " + std::to_string(window));
  }
  if (!(backoff >= 0.0 && backoff < 1.0)) {
    throw ValueError("demon::HealthGuard: backoff must be in [0, 1), got " +
                     std::to_string(backoff));
  }
}

void HealthGuard::observe(const torch::Tensor& loss) {
  if (!loss.defined() || loss.numel() == 0) {
    return;
  }
  torch::NoGradGuard no_grad;
  torch::Tensor value = loss.detach();
  value = (value.numel() == 1 ? value.reshape({}) : value.mean()).to(torch::kFloat);
  if (!average_.defined()) {
    average_ = value.clone();
    first_ = value.clone();
  } else {
    if (average_.device() != value.device()) {
      average_ = average_.to(value.device());
      first_ = first_.to(value.device());
    }
    if (observations_ < window_) {
      // Settling: a run whose first losses were NaN starts from its first finite one.
      average_ = torch::where(torch::isfinite(average_), average_, value);
      first_ = torch::where(torch::isfinite(first_), first_, value);
    }
    // average += (loss - average) / window, where the loss is finite: three small kernels.
    average_ = torch::where(torch::isfinite(value),
                            average_.lerp(value, 1.0 / static_cast<double>(window_)), average_);
  }
  ++observations_;
}

double HealthGuard::measure() {
  if (!average_.defined() || observations_ < window_) {
    return 0.0;
  }
  const torch::Tensor levels = torch::stack({average_, first_}).to(torch::kCPU, torch::kDouble);
  last_ = levels[0].item<double>();
  first_level_ = levels[1].item<double>();
  const double height = first_level_ - baseline_;
  if (!std::isfinite(last_) || !std::isfinite(height) || height <= 0.0) {
    return 0.0;
  }
  return (last_ - baseline_) / height;
}

const HealthEvent* HealthGuard::update(int64_t step, double rise) {
  if (!std::isfinite(last_)) {
    return nullptr;
  }
  if (tripped_) {
    if (rise <= rise_ / 2.0) {
      tripped_ = false;
      events_.back().recovered_at = step;
    }
    return nullptr;
  }
  if (rise > rise_) {
    tripped_ = true;
    scale_ *= backoff_;
    HealthEvent event;
    event.step = step;
    event.baseline_loss = baseline_;
    event.loss = last_;
    event.first_loss = first_level_;
    event.lambda_scale = scale_;
    events_.push_back(event);
    return &events_.back();
  }
  if (!std::isfinite(baseline_) || last_ < baseline_) {
    baseline_ = last_;
  }
  return nullptr;
}

nlohmann::json HealthGuard::to_json() const {
  nlohmann::json events = nlohmann::json::array();
  for (const auto& event : events_) {
    events.push_back(event.to_json());
  }
  return {{"average", average_.defined() ? level_to_json(average_.item<double>()) : nullptr},
          {"first", first_.defined() ? level_to_json(first_.item<double>()) : nullptr},
          {"first_level", level_to_json(first_level_)},
          {"observations", observations_},
          {"last", level_to_json(last_)},
          {"baseline", level_to_json(baseline_)},
          {"scale", scale_},
          {"tripped", tripped_},
          {"events", events}};
}

void HealthGuard::load_json(const nlohmann::json& state) {
  const nlohmann::json& average = state.at("average");
  const nlohmann::json& first = state.at("first");
  const double first_level = level_from_json(state.at("first_level"));
  const int64_t observations = state.at("observations").get<int64_t>();
  const double last = level_from_json(state.at("last"));
  const double baseline = level_from_json(state.at("baseline"));
  const double scale = state.at("scale").get<double>();
  const bool tripped = state.at("tripped").get<bool>();
  std::vector<HealthEvent> events;
  for (const auto& event : state.at("events")) {
    events.push_back(HealthEvent::from_json(event));
  }
  // The levels are float32 on the device: a value beyond float's range is damage too.
  const auto fits_float = [](const nlohmann::json& value) {
    return value.is_null() ||
           std::abs(value.get<double>()) <= static_cast<double>(std::numeric_limits<float>::max());
  };
  if (observations < 0 || !(scale >= 0.0 && scale <= 1.0) || (tripped && events.empty()) ||
      !fits_float(average) || !fits_float(first)) {
    throw ValueError("demon::HealthGuard: damaged state: " + state.dump());
  }
  // The average lives where the losses are; it moves there at the next observe().
  const auto level = [](const nlohmann::json& value) {
    return torch::tensor(value.is_null() ? std::nanf("") : static_cast<float>(value.get<double>()));
  };
  average_ = average.is_null() ? torch::Tensor() : level(average);
  first_ = average.is_null() ? torch::Tensor() : level(first);
  first_level_ = first_level;
  observations_ = observations;
  last_ = last;
  baseline_ = baseline;
  scale_ = scale;
  tripped_ = tripped;
  events_ = std::move(events);
}

}  // namespace demon
