#include "demon/options.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <stdexcept>
#include <vector>

#include "demon/errors.h"
#include "detail/atomic_file.h"
#include "detail/enum_names.h"
#include "detail/user_text.h"

namespace demon {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& message) {
  throw ValueError("demon::DemonOptions: " + message);
}

std::string describe(const json& value) {
  std::string text = value.dump();
  if (text.size() > 40) {
    text = text.substr(0, 37) + "...";
  }
  return std::string(value.type_name()) + " " + text;
}

int64_t read_int(const json& value, const std::string& key) {
  if (!value.is_number_integer()) {
    fail("key \"" + key + "\": expected an integer, got " + describe(value));
  }
  if (value.is_number_unsigned() &&
      value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    fail("key \"" + key + "\": " + value.dump() + " does not fit in a signed 64-bit integer");
  }
  return value.get<int64_t>();
}

uint64_t read_uint(const json& value, const std::string& key) {
  if (!value.is_number_integer() || (!value.is_number_unsigned() && value.get<int64_t>() < 0)) {
    fail("key \"" + key + "\": expected a non-negative integer, got " + describe(value));
  }
  return value.get<uint64_t>();
}

double read_double(const json& value, const std::string& key) {
  if (!value.is_number()) {
    fail("key \"" + key + "\": expected a number, got " + describe(value));
  }
  return value.get<double>();
}

std::optional<double> read_auto_double(const json& value, const std::string& key) {
  if (value.is_null() || (value.is_string() && value.get<std::string>() == "auto")) {
    return std::nullopt;
  }
  if (!value.is_number()) {
    fail("key \"" + key + "\": expected a number or \"auto\", got " + describe(value));
  }
  return value.get<double>();
}

json write_auto_double(const std::optional<double>& value) {
  return value ? json(*value) : json("auto");
}

std::map<std::string, int64_t> read_int_map(const json& value, const std::string& key) {
  if (!value.is_object()) {
    fail("key \"" + key + "\": expected an object of names to integers, got " + describe(value));
  }
  std::map<std::string, int64_t> result;
  for (const auto& [name, entry] : value.items()) {
    result[name] = read_int(entry, key + "." + name);
  }
  return result;
}

bool read_bool(const json& value, const std::string& key) {
  if (!value.is_boolean()) {
    fail("key \"" + key + "\": expected true or false, got " + describe(value));
  }
  return value.get<bool>();
}

template <typename Enum>
Enum read_enum(const json& value, const std::string& key, Enum (*from_string)(const std::string&)) {
  if (!value.is_string()) {
    fail("key \"" + key + "\": expected a string, got " + describe(value));
  }
  try {
    return from_string(value.get<std::string>());
  } catch (const std::invalid_argument& error) {
    fail("key \"" + key + "\": " + error.what());
  }
}

// One row per option: its JSON key, how to write it, how to read it. Both directions use the
// same table, so a round trip cannot miss a field.
struct Field {
  std::string key;
  std::function<json(const DemonOptions&)> get;
  std::function<void(DemonOptions&, const json&)> set;
};

#define DEMON_FIELD(name, reader)                                                                \
  Field {                                                                                        \
#name, [](const DemonOptions&                                                                \
                  o) { return json(o.name()); }, [](DemonOptions & o,                            \
                                                    const json& v) { o.name(reader(v, #name)); } \
  }
#define DEMON_AUTO_FIELD(name)                                                        \
  Field {                                                                             \
#name, [](const DemonOptions& o) { return write_auto_double(o.name()); },           \
        [](DemonOptions& o, const json& v) { o.name(read_auto_double(v, #name)); } \
  }
#define DEMON_ENUM_FIELD(name, parse)                                                  \
  Field {                                                                              \
#name, [](const DemonOptions& o) { return json(to_string(o.name())); },              \
        [](DemonOptions& o, const json& v) { o.name(read_enum(v, #name, &parse)); } \
  }

const std::vector<Field>& fields() {
  static const std::vector<Field> table = {
      DEMON_FIELD(total_steps, read_int),
      DEMON_FIELD(epochs, read_int),
      DEMON_FIELD(steps_per_epoch, read_int),
      DEMON_FIELD(schedule_span, read_int),
      DEMON_ENUM_FIELD(schedule, schedule_kind_from_string),
      DEMON_FIELD(pct_start, read_double),
      DEMON_FIELD(div_factor, read_double),
      DEMON_FIELD(final_div_factor, read_double),
      DEMON_ENUM_FIELD(regularizer, regularizer_from_string),
      DEMON_AUTO_FIELD(lambda_peak),
      DEMON_FIELD(lambda_relative, read_double),
      DEMON_ENUM_FIELD(pressure, pressure_from_string),
      DEMON_FIELD(element_flops, read_double),
      DEMON_FIELD(noise, read_bool),
      DEMON_ENUM_FIELD(noise_mode, noise_mode_from_string),
      DEMON_FIELD(sigma_peak, read_double),
      DEMON_FIELD(seed, read_uint),
      DEMON_FIELD(prune, read_bool),
      DEMON_FIELD(prune_every, read_int),
      DEMON_FIELD(prune_start, read_int),
      DEMON_FIELD(prune_at_end, read_bool),
      DEMON_FIELD(min_width, read_int),
      DEMON_FIELD(min_width_fraction, read_double),
      DEMON_FIELD(width_multiple, read_int),
      DEMON_FIELD(epsilon, read_double),
      DEMON_ENUM_FIELD(death_check, death_check_from_string),
      DEMON_ENUM_FIELD(forward_check, forward_check_from_string),
      DEMON_ENUM_FIELD(nonfinite_gradients, nonfinite_gradients_from_string),
      DEMON_ENUM_FIELD(criterion, criterion_kind_from_string),
      DEMON_FIELD(quasi_dead_ratio, read_double),
      DEMON_FIELD(scale_threshold, read_double),
      DEMON_FIELD(scale_fraction, read_double),
      DEMON_FIELD(max_cut_fraction, read_double),
      DEMON_FIELD(group_min_width, read_int_map),
      DEMON_FIELD(protect_floor, read_bool),
      DEMON_FIELD(target, read_double),
      DEMON_ENUM_FIELD(target_metric, budget_metric_from_string),
      DEMON_FIELD(target_by, read_double),
      DEMON_FIELD(controller_gain, read_double),
      DEMON_FIELD(controller_every, read_int),
      DEMON_AUTO_FIELD(controller_max_growth),
      DEMON_FIELD(controller_max_lambda, read_double),
      DEMON_FIELD(controller_lead, read_double),
      DEMON_FIELD(health_guard, read_bool),
      DEMON_FIELD(health_rise, read_double),
      DEMON_FIELD(health_window, read_int),
      DEMON_FIELD(health_backoff, read_double),
      DEMON_FIELD(error_if_inactive, read_bool),
  };
  return table;
}

#undef DEMON_FIELD
#undef DEMON_AUTO_FIELD
#undef DEMON_ENUM_FIELD

std::string closest_key(const std::string& key) {
  std::string best;
  size_t best_distance = 4;  // suggest only near misses
  for (const auto& field : fields()) {
    const size_t distance = detail::edit_distance(key, field.key);
    if (distance < best_distance) {
      best_distance = distance;
      best = field.key;
    }
  }
  return best;
}

}  // namespace

std::string to_string(Regularizer regularizer) {
  switch (regularizer) {
    case Regularizer::kNone:
      return "none";
    case Regularizer::kLasso:
      return "lasso";
    case Regularizer::kL2:
      return "l2";
  }
  throw ValueError("demon: unknown Regularizer");
}

std::string to_string(Pressure pressure) {
  switch (pressure) {
    case Pressure::kUniform:
      return "uniform";
    case Pressure::kFlops:
      return "flops";
    case Pressure::kTime:
      return "time";
  }
  throw ValueError("demon: unknown Pressure");
}

Pressure pressure_from_string(const std::string& name) {
  return detail::enum_from_string(name, {Pressure::kUniform, Pressure::kFlops, Pressure::kTime},
                                  "demon::pressure_from_string: unknown pressure");
}

std::string to_string(NoiseMode mode) {
  switch (mode) {
    case NoiseMode::kLiveOnly:
      return "live_only";
    case NoiseMode::kAll:
      return "all";
  }
  throw ValueError("demon: unknown NoiseMode");
}

std::string to_string(DeathCheck check) {
  switch (check) {
    case DeathCheck::kTrain:
      return "train";
    case DeathCheck::kEval:
      return "eval";
    case DeathCheck::kBoth:
      return "both";
  }
  throw ValueError("demon: unknown DeathCheck");
}

std::string to_string(CriterionKind kind) {
  switch (kind) {
    case CriterionKind::kDead:
      return "dead";
    case CriterionKind::kQuasiDead:
      return "quasi_dead";
    case CriterionKind::kSmallScale:
      return "small_scale";
  }
  throw ValueError("demon: unknown CriterionKind");
}

CriterionKind criterion_kind_from_string(const std::string& name) {
  return detail::enum_from_string(
      name, {CriterionKind::kDead, CriterionKind::kQuasiDead, CriterionKind::kSmallScale},
      "demon::criterion_kind_from_string: unknown criterion");
}

std::string to_string(ForwardCheck check) {
  switch (check) {
    case ForwardCheck::kPin:
      return "pin";
    case ForwardCheck::kError:
      return "error";
    case ForwardCheck::kOff:
      return "off";
  }
  throw ValueError("demon: unknown ForwardCheck");
}

ForwardCheck forward_check_from_string(const std::string& name) {
  return detail::enum_from_string(name,
                                  {ForwardCheck::kPin, ForwardCheck::kError, ForwardCheck::kOff},
                                  "demon::forward_check_from_string: unknown forward check");
}

std::string to_string(NonFiniteGradients action) {
  switch (action) {
    case NonFiniteGradients::kSkip:
      return "skip";
    case NonFiniteGradients::kError:
      return "error";
    case NonFiniteGradients::kOff:
      return "off";
  }
  throw ValueError("demon: unknown NonFiniteGradients");
}

NonFiniteGradients nonfinite_gradients_from_string(const std::string& name) {
  return detail::enum_from_string(
      name, {NonFiniteGradients::kSkip, NonFiniteGradients::kError, NonFiniteGradients::kOff},
      "demon::nonfinite_gradients_from_string: unknown nonfinite_gradients action");
}

int64_t batches_per_epoch(int64_t dataset_size, int64_t batch_size, bool drop_last) {
  if (dataset_size < 1 || batch_size < 1) {
    throw ValueError(
        "demon::batches_per_epoch: dataset_size and batch_size must be >= 1, "
        "got " +
        std::to_string(dataset_size) + " and " + std::to_string(batch_size));
  }
  return drop_last ? dataset_size / batch_size : (dataset_size + batch_size - 1) / batch_size;
}

DeathCheck death_check_from_string(const std::string& name) {
  return detail::enum_from_string(name, {DeathCheck::kTrain, DeathCheck::kEval, DeathCheck::kBoth},
                                  "demon::death_check_from_string: unknown death check");
}

Regularizer regularizer_from_string(const std::string& name) {
  return detail::enum_from_string(name, {Regularizer::kNone, Regularizer::kLasso, Regularizer::kL2},
                                  "demon::regularizer_from_string: unknown regularizer");
}

NoiseMode noise_mode_from_string(const std::string& name) {
  return detail::enum_from_string(name, {NoiseMode::kLiveOnly, NoiseMode::kAll},
                                  "demon::noise_mode_from_string: unknown noise mode");
}

void DemonOptions::validate() const {
  auto require = [](bool ok, const std::string& message) {
    if (!ok) {
      fail(message);
    }
  };
  require(total_steps() >= 0 && epochs() >= 0 && steps_per_epoch() >= 0,
          "total_steps, epochs and steps_per_epoch must be >= 0, got " +
              std::to_string(total_steps()) + ", " + std::to_string(epochs()) + ", " +
              std::to_string(steps_per_epoch()));
  require((epochs() > 0) == (steps_per_epoch() > 0),
          "epochs and steps_per_epoch go together (both > 0), got " + std::to_string(epochs()) +
              " and " + std::to_string(steps_per_epoch()));
  require(total_steps() > 0 || epochs() > 0,
          "the run's length is missing: set total_steps, or epochs and steps_per_epoch");
  require(total_steps() == 0 || epochs() == 0 || total_steps() == epochs() * steps_per_epoch(),
          "total_steps " + std::to_string(total_steps()) + " disagrees with epochs x " +
              "steps_per_epoch = " + std::to_string(epochs() * steps_per_epoch()));
  require(schedule_span() >= 0, "schedule_span must be >= 0 (0 = 0.87 * total_steps), got " +
                                    std::to_string(schedule_span()));
  require(!lambda_peak() || (std::isfinite(*lambda_peak()) && *lambda_peak() >= 0.0),
          "lambda_peak must be finite and >= 0 (or unset: auto), got " +
              std::to_string(lambda_peak().value_or(0.0)));
  require(std::isfinite(lambda_relative()) && lambda_relative() > 0.0,
          "lambda_relative must be finite and > 0, got " + std::to_string(lambda_relative()));
  require(std::isfinite(element_flops()) && element_flops() > 0.0,
          "element_flops must be finite and > 0, got " + std::to_string(element_flops()));
  require(std::isfinite(sigma_peak()) && sigma_peak() >= 0.0,
          "sigma_peak must be finite and >= 0, got " + std::to_string(sigma_peak()));
  require(prune_every() >= 0, "prune_every must be >= 0 (0: a twentieth of the run), got " +
                                  std::to_string(prune_every()));
  require(prune_start() >= 0, "prune_start must be >= 0, got " + std::to_string(prune_start()));
  require(min_width() >= 1, "min_width must be >= 1, got " + std::to_string(min_width()));
  require(min_width_fraction() >= 0.0 && min_width_fraction() <= 1.0,
          "min_width_fraction must be in [0, 1], got " + std::to_string(min_width_fraction()));
  require(width_multiple() >= 1,
          "width_multiple must be >= 1, got " + std::to_string(width_multiple()));
  require(quasi_dead_ratio() >= 0.0 && quasi_dead_ratio() < 1.0,
          "quasi_dead_ratio must be in [0, 1), got " + std::to_string(quasi_dead_ratio()));
  require(scale_threshold() >= 0.0,
          "scale_threshold must be >= 0, got " + std::to_string(scale_threshold()));
  require(scale_fraction() >= 0.0 && scale_fraction() < 1.0,
          "scale_fraction must be in [0, 1), got " + std::to_string(scale_fraction()));
  require(max_cut_fraction() > 0.0 && max_cut_fraction() <= 1.0,
          "max_cut_fraction must be in (0, 1], got " + std::to_string(max_cut_fraction()));
  for (const auto& [name, floor] : group_min_width()) {
    require(floor >= 1,
            "group_min_width of \"" + name + "\" must be >= 1, got " + std::to_string(floor));
  }
  require(target() == 0.0 || (target() > 0.0 && target() < 1.0),
          "target must be 0 (none) or in (0, 1), got " + std::to_string(target()));
  require(target_by() > 0.0 && target_by() <= 1.0,
          "target_by must be in (0, 1], got " + std::to_string(target_by()));
  require(controller_gain() > 0.0,
          "controller_gain must be > 0, got " + std::to_string(controller_gain()));
  require(!controller_max_growth() ||
              (std::isfinite(*controller_max_growth()) && *controller_max_growth() >= 1.0),
          "controller_max_growth must be finite and >= 1 (or unset: auto), got " +
              std::to_string(controller_max_growth().value_or(0.0)));
  require(std::isfinite(controller_max_lambda()) && controller_max_lambda() >= 1.0,
          "controller_max_lambda must be finite and >= 1, got " +
              std::to_string(controller_max_lambda()));
  require(target() == 0.0 || regularizer() != Regularizer::kNone,
          "target needs a regularizer: the budget steers λ, and regularizer is \"none\"");
  require(target() == 0.0 || prune(), "target needs prune(true): nothing is cut without it");
  require(controller_lead() >= 0.0 && controller_lead() < 1.0,
          "controller_lead must be in [0, 1), got " + std::to_string(controller_lead()));
  require(controller_every() >= 0,
          "controller_every must be >= 0, got " + std::to_string(controller_every()));
  require(std::isfinite(health_rise()) && health_rise() > 0.0,
          "health_rise must be finite and > 0, got " + std::to_string(health_rise()));
  require(health_window() >= 1,
          "health_window must be >= 1, got " + std::to_string(health_window()));
  require(health_backoff() >= 0.0 && health_backoff() < 1.0,
          "health_backoff must be in [0, 1), got " + std::to_string(health_backoff()));
  require(std::isfinite(epsilon()) && epsilon() >= 0.0,
          "epsilon must be finite and >= 0, got " + std::to_string(epsilon()));
  // The schedule checks its own shape parameters (pct_start, div_factor, ...).
  try {
    sigma_schedule();
  } catch (const std::invalid_argument& error) {
    fail(error.what());
  }
}

int64_t DemonOptions::run_steps() const {
  return total_steps() > 0 ? total_steps() : epochs() * steps_per_epoch();
}

int64_t DemonOptions::effective_prune_every() const {
  if (prune_every() > 0) {
    return prune_every();
  }
  return std::max<int64_t>(100, std::llround(static_cast<double>(run_steps()) / 20.0));
}

int64_t DemonOptions::effective_span() const {
  if (schedule_span() > 0) {
    return schedule_span();
  }
  return std::max<int64_t>(1, std::llround(0.87 * static_cast<double>(run_steps())));
}

Schedule DemonOptions::lambda_schedule() const {
  return Schedule(
      ScheduleOptions(schedule(), lambda_peak().value_or(lambda_relative()), effective_span())
          .pct_start(pct_start())
          .div_factor(div_factor())
          .final_div_factor(final_div_factor()));
}

int64_t DemonOptions::lambda_rise_steps() const {
  return std::max<int64_t>(
      1, static_cast<int64_t>(pct_start() * static_cast<double>(effective_span())));
}

Schedule DemonOptions::sigma_schedule() const {
  return Schedule(ScheduleOptions(schedule(), sigma_peak(), effective_span())
                      .pct_start(pct_start())
                      .div_factor(div_factor())
                      .final_div_factor(final_div_factor()));
}

nlohmann::json DemonOptions::to_json() const {
  json out = json::object();
  for (const auto& field : fields()) {
    out[field.key] = field.get(*this);
  }
  return out;
}

DemonOptions DemonOptions::from_json(const nlohmann::json& in) {
  if (!in.is_object()) {
    fail("expected a JSON object, got " + describe(in));
  }
  DemonOptions options;
  for (const auto& [key, value] : in.items()) {
    bool known = false;
    for (const auto& field : fields()) {
      if (field.key == key) {
        field.set(options, value);
        known = true;
        break;
      }
    }
    if (!known) {
      const std::string hint = closest_key(key);
      fail("unknown key \"" + key + "\"" +
           (hint.empty() ? std::string() : " (did you mean \"" + hint + "\"?)"));
    }
  }
  // The run's length may be left out here and set later (e.g. from epochs x batches); every
  // other value is checked now, so that a bad config fails when it is read.
  DemonOptions probe = options;
  if (probe.total_steps() == 0 && probe.epochs() == 0) {
    probe.total_steps(1);
  }
  probe.validate();
  return options;
}

void to_json(nlohmann::json& json_out, const DemonOptions& options) {
  json_out = options.to_json();
}

void from_json(const nlohmann::json& json_in, DemonOptions& options) {
  options = DemonOptions::from_json(json_in);
}

DemonOptions DemonOptions::load(const std::string& path) {
  std::ifstream file(path);
  if (!file) {
    fail("cannot open \"" + path + "\"");
  }
  json parsed;
  try {
    parsed = json::parse(file);
  } catch (const json::parse_error& error) {
    fail("\"" + path + "\" is not valid JSON: " + error.what());
  }
  return from_json(parsed);
}

void DemonOptions::save(const std::string& path) const {
  const std::string text = to_json().dump(2) + "\n";
  detail::replace_file_atomically(path, [&](const std::string& temp) {
    std::ofstream file(temp, std::ios::binary | std::ios::trunc);
    file << text;
    file.close();
    if (!file) {
      fail("cannot write \"" + temp + "\"");
    }
  });
}

}  // namespace demon
