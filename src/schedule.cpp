#include "demon/schedule.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "demon/errors.h"
#include "detail/enum_names.h"

namespace demon {
namespace {

constexpr double kPi = 3.14159265358979323846;

// optax's cosine interpolation, end + (start - end)/2 · (cos(π·pct) + 1), written as a weighted
// sum so that it is exactly `start` at pct = 0 and exactly `end` at pct = 1.
double cosine_interpolate(double start, double end, double pct) {
  const double weight = 0.5 * (1.0 + std::cos(kPi * pct));
  return start * weight + end * (1.0 - weight);
}

void require(bool ok, const std::string& message) {
  if (!ok) {
    throw ValueError("demon::Schedule: " + message);
  }
}

}  // namespace

std::string to_string(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kOneCycle:
      return "one_cycle";
    case ScheduleKind::kConstant:
      return "constant";
    case ScheduleKind::kCosineDecay:
      return "cosine_decay";
    case ScheduleKind::kLinearWarmup:
      return "linear_warmup";
    case ScheduleKind::kHold:
      return "hold";
  }
  throw ValueError("demon: unknown ScheduleKind");
}

ScheduleKind schedule_kind_from_string(const std::string& name) {
  return detail::enum_from_string(
      name,
      {ScheduleKind::kOneCycle, ScheduleKind::kConstant, ScheduleKind::kCosineDecay,
       ScheduleKind::kLinearWarmup, ScheduleKind::kHold},
      "demon::schedule_kind_from_string: unknown schedule");
}

Schedule::Schedule(ScheduleOptions options) : options_(options) {
  const auto& o = options_;
  require(std::isfinite(o.peak()) && o.peak() >= 0.0,
          "peak must be finite and >= 0, got " + std::to_string(o.peak()));
  if (o.kind() != ScheduleKind::kConstant) {
    require(o.span() >= 1, "span must be >= 1 step, got " + std::to_string(o.span()));
  }
  if (o.kind() == ScheduleKind::kOneCycle) {
    require(o.pct_start() > 0.0 && o.pct_start() < 1.0,
            "pct_start must be in (0, 1), got " + std::to_string(o.pct_start()));
    require(std::isfinite(o.div_factor()) && o.div_factor() > 0.0,
            "div_factor must be > 0, got " + std::to_string(o.div_factor()));
    require(std::isfinite(o.final_div_factor()) && o.final_div_factor() > 0.0,
            "final_div_factor must be > 0, got " + std::to_string(o.final_div_factor()));
  }
}

double Schedule::value(int64_t step) const {
  const auto& o = options_;
  const double t = static_cast<double>(std::max<int64_t>(step, 0));
  const double span = static_cast<double>(o.span());
  switch (o.kind()) {
    case ScheduleKind::kConstant:
      return o.peak();
    case ScheduleKind::kCosineDecay:
      return o.peak() * 0.5 * (1.0 + std::cos(kPi * std::min(t, span) / span));
    case ScheduleKind::kLinearWarmup:
      return o.peak() * std::min(t, span) / span;
    case ScheduleKind::kHold:
      return t < span ? o.peak() : 0.0;
    case ScheduleKind::kOneCycle: {
      // Boundaries as optax computes them: int(pct_start * span) and span.
      const auto rise_end = static_cast<double>(static_cast<int64_t>(o.pct_start() * span));
      const double start = o.peak() / o.div_factor();
      const double end = o.peak() / (o.div_factor() * o.final_div_factor());
      if (t < rise_end) {
        return cosine_interpolate(start, o.peak(), t / rise_end);
      }
      if (t < span) {
        return cosine_interpolate(o.peak(), end, (t - rise_end) / (span - rise_end));
      }
      return end;
    }
  }
  throw StateError("demon::Schedule: unknown kind");
}

}  // namespace demon
