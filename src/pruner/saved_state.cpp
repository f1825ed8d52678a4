#include "pruner/saved_state.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "demon/errors.h"

namespace demon::detail {
namespace {

std::string text_of(const std::optional<nlohmann::json>& json) {
  return json ? json->dump() : std::string();
}

}  // namespace

nlohmann::json parse_state(const std::string& text) {
  auto json = nlohmann::json::parse(text);
  const std::function<void(const nlohmann::json&)> check = [&](const nlohmann::json& item) {
    if (item.is_structured()) {
      for (const auto& element : item)
        check(element);
    } else if ((item.is_number_float() && !(std::abs(item.get<double>()) < 9.2e18)) ||
               (item.is_number_unsigned() &&
                item.get<uint64_t>() >
                    static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      throw ValueError("demon::DemonPruner::load: damaged state: the number " + item.dump() +
                       " is out of range");
    }
  };
  check(json);
  return json;
}

void write_pruner_state(torch::serialize::OutputArchive& archive, const SavedPrunerState& state) {
  archive.write("step", c10::IValue(state.step));
  archive.write("prune_events", c10::IValue(state.prune_events));
  archive.write("skipped_steps", c10::IValue(state.skipped_steps));
  archive.write("initial_sizes", c10::IValue(text_of(state.initial_sizes)));
  archive.write("options", c10::IValue(state.options.dump()));
  archive.write("initial", c10::IValue(text_of(state.initial)));
  archive.write("current", c10::IValue(text_of(state.current)));
  archive.write(
      "pinned_groups",
      c10::IValue(nlohmann::json(state.pinned_groups.value_or(std::map<std::string, std::string>{}))
                      .dump()));
  archive.write("budget", c10::IValue(state.budget));
  archive.write("health", c10::IValue(state.health));
  archive.write("gradient_scale", c10::IValue(state.gradient_scale));
  nlohmann::json devices = nlohmann::json::array();
  for (const auto& [device, generator] : state.noise_states) {
    archive.write("noise_" + std::to_string(devices.size()), generator);
    devices.push_back(device);
  }
  archive.write("noise_devices", c10::IValue(devices.dump()));
  archive.write("activity_observations", c10::IValue(state.activity_observations));
  archive.write("activity_sites", c10::IValue(static_cast<int64_t>(state.activity.size())));
  for (size_t s = 0; s < state.activity.size(); ++s) {
    // An unobserved site is saved as an empty tensor.
    const auto& peaks = state.activity[s];
    archive.write("activity_" + std::to_string(s),
                  peaks.defined() ? peaks.to(torch::kCPU) : torch::empty({0}, torch::kFloat));
  }
}

SavedPrunerState read_pruner_state(torch::serialize::InputArchive& archive) {
  SavedPrunerState state;
  c10::IValue value;
  // Optional entries: absent from checkpoints written before the part that saves them existed.
  const auto text = [&](const char* key) -> std::optional<std::string> {
    if (!archive.try_read(key, value))
      return std::nullopt;
    return value.toStringRef();
  };
  const auto json = [&](const char* key) -> std::optional<nlohmann::json> {
    const auto found = text(key);
    if (!found || found->empty())
      return std::nullopt;
    return parse_state(*found);
  };
  archive.read("options", value);
  state.options = nlohmann::json::parse(value.toStringRef());
  archive.read("step", value);
  state.step = value.toInt();
  archive.read("prune_events", value);
  state.prune_events = value.toInt();
  state.skipped_steps = archive.try_read("skipped_steps", value) ? value.toInt() : 0;
  state.initial_sizes = json("initial_sizes");
  archive.read("initial", value);  // required, "" when the saving pruner had seen no model
  if (!value.toStringRef().empty())
    state.initial = parse_state(value.toStringRef());
  state.current = json("current");
  state.budget = text("budget").value_or("");
  state.health = text("health").value_or("");
  state.gradient_scale = text("gradient_scale").value_or("");
  if (const auto pinned = text("pinned_groups"))
    state.pinned_groups = parse_state(*pinned).get<std::map<std::string, std::string>>();
  archive.read("noise_devices", value);
  const auto devices = parse_state(value.toStringRef());
  for (size_t i = 0; i < devices.size(); ++i) {
    torch::Tensor generator;
    archive.read("noise_" + std::to_string(i), generator);
    state.noise_states[devices[i].get<std::string>()] = generator;
  }
  archive.read("activity_observations", value);
  state.activity_observations = value.toInt();
  archive.read("activity_sites", value);
  // One entry per site follows: a count beyond the archive's entries is damage, not a size.
  const int64_t sites = value.toInt();
  if (sites < 0 || sites > static_cast<int64_t>(archive.keys().size())) {
    throw ValueError("demon::DemonPruner::load: damaged state: " + std::to_string(sites) +
                     " activity sites");
  }
  state.activity.resize(static_cast<size_t>(sites));
  for (size_t s = 0; s < state.activity.size(); ++s) {
    torch::Tensor peaks;
    archive.read("activity_" + std::to_string(s), peaks);
    if (peaks.numel() > 0)
      state.activity[s] = peaks;
  }
  return state;
}

std::vector<std::string> merge_warnings(std::vector<std::string> saved,
                                        const std::vector<std::string>& current) {
  for (const auto& warning : current) {
    if (std::find(saved.begin(), saved.end(), warning) == saved.end())
      saved.push_back(warning);
  }
  return saved;
}

}  // namespace demon::detail
