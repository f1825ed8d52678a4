#include "demon/report.h"

#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>
#include <unordered_map>

#include "layers/layer_spec.h"

namespace demon {
namespace {

double ratio(int64_t part, int64_t whole) {
  return whole > 0 ? static_cast<double>(part) / static_cast<double>(whole) : 1.0;
}

int64_t width_of(const GraphLayer& layer) {
  const auto* spec = detail::find_layer_spec(*layer.module);
  return spec != nullptr && spec->width != nullptr ? spec->width(*layer.module) : 0;
}

std::string human(double value) {
  char text[32];
  if (value >= 1e9) {
    std::snprintf(text, sizeof(text), "%.2fG", value / 1e9);
  } else if (value >= 1e6) {
    std::snprintf(text, sizeof(text), "%.2fM", value / 1e6);
  } else if (value >= 1e3) {
    std::snprintf(text, sizeof(text), "%.1fk", value / 1e3);
  } else {
    std::snprintf(text, sizeof(text), "%.0f", value);
  }
  return text;
}

}  // namespace

double ModelSummary::neural_sparsity() const {
  return 1.0 - ratio(live_units, initial_units);
}
double ModelSummary::parameter_sparsity() const {
  return 1.0 - ratio(parameters, initial_parameters);
}
double ModelSummary::flops_ratio() const {
  return ratio(flops, initial_flops);
}

ModelSummary summarize(const DependencyGraph& graph, const torch::nn::Module& model,
                       const ModelSummary* initial) {
  ModelSummary summary;
  std::unordered_map<std::string, int64_t> initial_widths;
  if (initial != nullptr) {
    for (const auto& layer : initial->layers)
      initial_widths[layer.name] = layer.initial;
  }
  for (const auto& layer : graph.layers()) {
    const int64_t width = width_of(layer);
    const auto found = initial_widths.find(layer.name);
    summary.layers.push_back({layer.name, to_string(layer.kind),
                              found != initial_widths.end() ? found->second : width, width});
  }
  std::set<int64_t> neurons;
  for (const auto& site : graph.sites()) {
    for (int64_t u : site.owner) {
      if (u >= 0)
        neurons.insert(u);
    }
  }
  summary.live_units = static_cast<int64_t>(neurons.size());
  for (const auto& p : model.parameters())
    summary.parameters += p.numel();
  summary.flops = graph.flops();
  summary.initial_units = initial ? initial->initial_units : summary.live_units;
  summary.initial_parameters = initial ? initial->initial_parameters : summary.parameters;
  summary.initial_flops = initial ? initial->initial_flops : summary.flops;
  return summary;
}

std::string ModelSummary::table() const {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof(line), "%-32s %-17s %8s %8s\n", "layer", "kind", "initial", "current");
  out << line;
  for (const auto& layer : layers) {
    std::snprintf(line, sizeof(line), "%-32s %-17s %8lld %8lld\n", layer.name.c_str(),
                  layer.kind.c_str(), static_cast<long long>(layer.initial),
                  static_cast<long long>(layer.current));
    out << line;
  }
  std::snprintf(
      line, sizeof(line),
      "neural sparsity %.4f (%lld of %lld units live), parameter sparsity %.4f (%s of "
      "%s), FLOPs %.4f of initial (%s of %s per sample)\n",
      neural_sparsity(), static_cast<long long>(live_units), static_cast<long long>(initial_units),
      parameter_sparsity(), human(static_cast<double>(parameters)).c_str(),
      human(static_cast<double>(initial_parameters)).c_str(), flops_ratio(),
      human(static_cast<double>(flops)).c_str(), human(static_cast<double>(initial_flops)).c_str());
  out << line;
  for (const auto& warning : warnings) {
    out << "warning: " << warning << "\n";
  }
  for (const auto& event : health_events) {
    out << "health guard: " << event.describe() << "\n";
  }
  return out.str();
}

nlohmann::json ModelSummary::to_json() const {
  nlohmann::json layers_json = nlohmann::json::array();
  for (const auto& layer : layers) {
    layers_json.push_back({{"name", layer.name},
                           {"kind", layer.kind},
                           {"initial", layer.initial},
                           {"current", layer.current}});
  }
  nlohmann::json out = {{"layers", layers_json},
                        {"initial_units", initial_units},
                        {"live_units", live_units},
                        {"neural_sparsity", neural_sparsity()},
                        {"initial_parameters", initial_parameters},
                        {"parameters", parameters},
                        {"parameter_sparsity", parameter_sparsity()},
                        {"initial_flops", initial_flops},
                        {"flops", flops},
                        {"flops_ratio", flops_ratio()}};
  if (!warnings.empty()) {
    out["warnings"] = warnings;
  }
  if (!health_events.empty()) {
    nlohmann::json events = nlohmann::json::array();
    for (const auto& event : health_events) {
      events.push_back(event.to_json());
    }
    out["health_events"] = events;
  }
  return out;
}

ModelSummary ModelSummary::from_json(const nlohmann::json& j) {
  ModelSummary s;
  for (const auto& layer : j.at("layers")) {
    s.layers.push_back(
        {layer.at("name"), layer.at("kind"), layer.at("initial"), layer.at("current")});
  }
  s.initial_units = j.at("initial_units");
  s.live_units = j.at("live_units");
  s.initial_parameters = j.at("initial_parameters");
  s.parameters = j.at("parameters");
  s.initial_flops = j.at("initial_flops");
  s.flops = j.at("flops");
  if (j.contains("warnings")) {
    s.warnings = j.at("warnings").get<std::vector<std::string>>();
  }
  if (j.contains("health_events")) {
    for (const auto& event : j.at("health_events")) {
      s.health_events.push_back(HealthEvent::from_json(event));
    }
  }
  return s;
}

std::string PruneReport::table() const {
  std::ostringstream out;
  out << "prune event at step " << step << " (" << criterion << ", " << death_check << "): removed "
      << units_removed << " units from " << groups.size() << " groups";
  if (units_kept_by_floor > 0) {
    out << ", kept " << units_kept_by_floor << " (width floors)";
  }
  if (units_deferred > 0) {
    out << ", deferred " << units_deferred << " (guard or budget)";
  }
  if (!std::isnan(output_change)) {
    out << ", output change " << output_change << (exact ? "" : " (inexact criterion)");
  }
  if (!std::isnan(cost_ratio)) {
    out << ", cost ratio " << cost_ratio << ", lambda now " << lambda_after;
  }
  if (lambda_scale != 1.0) {
    out << ", health guard: lambda x" << lambda_scale;
  }
  out << "\n";
  for (const auto& group : groups) {
    out << "  " << group.name << ": " << group.before << " -> " << group.after << "\n";
  }
  out << after.table();
  return out.str();
}

nlohmann::json PruneReport::to_json() const {
  nlohmann::json groups_json = nlohmann::json::array();
  for (const auto& group : groups) {
    groups_json.push_back({{"name", group.name}, {"before", group.before}, {"after", group.after}});
  }
  // NaN is not JSON: absent figures are null.
  auto number = [](double value) {
    return std::isnan(value) ? nlohmann::json() : nlohmann::json(value);
  };
  return {{"step", step},
          {"death_check", death_check},
          {"criterion", criterion},
          {"exact", exact},
          {"output_change", number(output_change)},
          {"units_removed", units_removed},
          {"units_kept_by_floor", units_kept_by_floor},
          {"units_deferred", units_deferred},
          {"cost_ratio", number(cost_ratio)},
          {"lambda_after", number(lambda_after)},
          {"lambda_scale", lambda_scale},
          {"groups", groups_json},
          {"before", before.to_json()},
          {"after", after.to_json()}};
}

}  // namespace demon
