#include "config.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace resnet18_cifar10 {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& message) {
  throw std::invalid_argument("config: " + message);
}

template <typename T>
struct IsVector : std::false_type {};
template <typename E>
struct IsVector<std::vector<E>> : std::true_type {};

// Whether `value` converts to T exactly: the right JSON type and, for integers, in range (a
// huge literal parses as a double, whose conversion to an integer would be undefined).
template <typename T>
bool fits(const json& value) {
  if constexpr (IsVector<T>::value) {
    return value.is_array() && std::all_of(value.begin(), value.end(), [](const json& element) {
             return fits<typename T::value_type>(element);
           });
  } else if constexpr (std::is_same_v<T, bool>) {
    return value.is_boolean();
  } else if constexpr (std::is_same_v<T, std::string>) {
    return value.is_string();
  } else if constexpr (std::is_floating_point_v<T>) {
    return value.is_number();
  } else if constexpr (std::is_unsigned_v<T>) {
    return value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0);
  } else {
    static_assert(std::is_same_v<T, int64_t>, "a config field of another type");
    return value.is_number_integer() &&
           (!value.is_number_unsigned() ||
            value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
  }
}

template <typename T>
T read(const json& value, const std::string& key) {
  if (!fits<T>(value)) {
    fail("key \"" + key + "\" has the wrong type or is out of range: " + value.dump());
  }
  return value.get<T>();
}

// One row per key: how to write it, how to read it.
struct Field {
  const char* key;
  std::function<json(const TrainConfig&)> get;
  std::function<void(TrainConfig&, const json&)> set;
};

#define FIELD(name)                                                    \
  Field {                                                              \
#name, [](const TrainConfig& c) { return json(c.name); },            \
        [](TrainConfig& c, const json& v) {                              \
          c.name = read<decltype(TrainConfig::name)>(v, #name);          \
        } \
  }

const std::vector<Field>& fields() {
  static const std::vector<Field> table = {
      FIELD(data_dir),
      FIELD(synthetic_train),
      FIELD(synthetic_test),
      FIELD(augment),
      FIELD(width),
      FIELD(selection_shortcuts),
      FIELD(epochs),
      FIELD(batch_size),
      FIELD(eval_batch_size),
      FIELD(optimizer),
      FIELD(lr),
      FIELD(weight_decay),
      FIELD(momentum),
      FIELD(lr_schedule),
      FIELD(lr_decay_epochs),
      FIELD(lr_decay_factor),
      FIELD(dense),
      FIELD(baseline),
      FIELD(slim_epoch),
      FIELD(slim_fraction),
      FIELD(death_check_batches),
      FIELD(death_check_batch_size),
      FIELD(device),
      FIELD(amp),
      FIELD(channels_last),
      FIELD(cudnn_benchmark),
      FIELD(seed),
      FIELD(threads),
      FIELD(log_every),
      FIELD(eval_every),
      Field{"demon", [](const TrainConfig& c) { return c.demon; },
            [](TrainConfig& c, const json& v) {
              if (!v.is_object())
                fail("key \"demon\" must be an object of DemonOptions keys");
              c.demon = v;
            }},
  };
  return table;
}
#undef FIELD

}  // namespace

json TrainConfig::to_json() const {
  json out = json::object();
  for (const auto& field : fields())
    out[field.key] = field.get(*this);
  return out;
}

TrainConfig TrainConfig::from_json(const json& in) {
  if (!in.is_object())
    fail("expected a JSON object");
  TrainConfig config;
  for (const auto& [key, value] : in.items()) {
    bool known = false;
    for (const auto& field : fields()) {
      if (key == field.key) {
        field.set(config, value);
        known = true;
      }
    }
    if (!known)
      fail("unknown key \"" + key + "\"");
  }
  config.validate();
  return config;
}

TrainConfig TrainConfig::load(const std::string& path) {
  std::ifstream file(path);
  if (!file)
    fail("cannot open \"" + path + "\"");
  try {
    return from_json(json::parse(file));
  } catch (const json::parse_error& error) {
    fail("\"" + path + "\" is not valid JSON: " + error.what());
  }
}

void TrainConfig::validate() const {
  auto require = [](bool ok, const std::string& message) {
    if (!ok)
      fail(message);
  };
  require(epochs >= 1, "epochs must be >= 1");
  require(batch_size >= 1 && eval_batch_size >= 1, "batch sizes must be >= 1");
  require(width > 0.0, "width must be > 0");
  require(optimizer == "adamw" || optimizer == "sgd", "optimizer must be \"adamw\" or \"sgd\"");
  require(lr > 0.0, "lr must be > 0");
  require(weight_decay >= 0.0, "weight_decay must be >= 0");
  require(lr_schedule == "step" || lr_schedule == "one_cycle" || lr_schedule == "constant",
          "lr_schedule must be \"step\", \"one_cycle\" or \"constant\"");
  require(device == "cpu" || device == "cuda", "device must be \"cpu\" or \"cuda\"");
  require(amp == "none" || amp == "bf16" || amp == "fp16",
          "amp must be \"none\", \"bf16\" or \"fp16\"");
  require(amp == "none" || device == "cuda", "amp needs device \"cuda\"");
  require(synthetic_train >= batch_size && synthetic_test >= 1,
          "synthetic_train must hold one batch and synthetic_test at least one image");
  require(death_check_batches >= 1 && death_check_batch_size >= 1,
          "death_check_batches and death_check_batch_size must be >= 1");
  require(log_every >= 1, "log_every must be >= 1");
  require(eval_every >= 1, "eval_every must be >= 1");
  require(!cudnn_benchmark || device == "cuda", "cudnn_benchmark needs device \"cuda\"");
  require(threads >= 0, "threads must be >= 0");
  require(baseline == "demp" || baseline == "slimming",
          "baseline must be \"demp\" or \"slimming\"");
  require(slim_epoch >= 0 && slim_epoch < epochs, "slim_epoch must be in [0, epochs)");
  require(slim_fraction > 0.0 && slim_fraction < 1.0, "slim_fraction must be in (0, 1)");
  demon_options(1);  // throws, naming the key, if the demon object is invalid
}

demon::DemonOptions TrainConfig::demon_options(int64_t total_steps, int64_t steps_per_epoch) const {
  auto options = demon::DemonOptions::from_json(demon);
  if (!demon.contains("total_steps") && !demon.contains("epochs"))
    options.total_steps(total_steps);
  if (baseline == "slimming") {
    const int64_t cut_step = slimming_epoch() * steps_per_epoch;
    options.schedule(demon::ScheduleKind::kHold)
        .schedule_span(std::max<int64_t>(1, cut_step))
        .noise(false)
        .criterion(demon::CriterionKind::kSmallScale)
        .scale_fraction(slim_fraction)
        .prune_start(options.run_steps() + 1)  // no scheduled event: the trainer cuts once
        .prune_at_end(false);
  }
  options.validate();
  return options;
}

}  // namespace resnet18_cifar10
