// DemonPruner's save and load: which of its fields travel in a checkpoint, and how a loaded state
// is taken over. The archive's entries are read and checked whole by saved_state.h before the
// pruner takes any of them, so a checkpoint that fails to load leaves the pruner as it was.
#include <optional>
#include <string>
#include <utility>

#include "demon/errors.h"
#include "demon/pruner.h"
#include "pruner/saved_state.h"

namespace demon {

void DemonPruner::save(torch::serialize::OutputArchive& archive) const {
  detail::SavedPrunerState state;
  state.options = options_.to_json();
  state.step = step_;
  state.prune_events = prune_events_;
  state.skipped_steps = skipped_steps_;
  // Sizes of the model as first seen: after a resume the pruner first sees the pruned model.
  state.initial_sizes = nlohmann::json{{"groups", initial_group_sizes_},
                                       {"parameters", initial_graph_parameters_},
                                       {"cost", initial_cost_}};
  if (initial_)
    state.initial = initial_->to_json();
  // The warnings so far travel with the figures, so a resumed run reports them (and does not
  // repeat them); the health events are the guard's own state.
  ModelSummary current = summary();
  current.health_events.clear();
  state.current = current.to_json();
  state.pinned_groups = pinned_groups_;
  state.budget = budget_ ? budget_->to_json().dump() : std::string();
  state.health = health_ ? health_->to_json().dump() : std::string();
  state.gradient_scale = gradient_scale_ ? gradient_scale_->to_json().dump() : std::string();
  if (noise_)
    state.noise_states = noise_->generator_states();
  state.activity_observations = activity_.observations();
  state.activity = activity_.peaks();
  detail::write_pruner_state(archive, state);
}

void DemonPruner::load(torch::serialize::InputArchive& archive) {
  try {
    load_state(archive);
  } catch (const nlohmann::json::exception& error) {
    throw ValueError(std::string("demon::DemonPruner::load: damaged state: ") + error.what());
  } catch (const c10::Error& error) {
    throw ValueError(std::string("demon::DemonPruner::load: damaged state: ") +
                     error.what_without_backtrace());
  }
}

void DemonPruner::load_state(torch::serialize::InputArchive& archive) {
  // Everything is read and parsed first, then taken over: a checkpoint that fails to load leaves
  // the pruner as it was.
  detail::SavedPrunerState state = detail::read_pruner_state(archive);
  const auto saved = DemonOptions::from_json(state.options);
  if (saved.to_json() != options_.to_json()) {
    // Different options would make a "resumed" run a different run.
    throw ValueError(
        "demon::DemonPruner::load: the checkpoint was written with other DemonOptions: " +
        saved.to_json().dump());
  }
  std::optional<ModelSummary> initial, restored;
  if (state.initial)
    initial = ModelSummary::from_json(*state.initial);
  // The model's figures as saved (a checkpoint without them reads as the initial model until
  // the graph is rediscovered).
  if (state.current)
    restored = ModelSummary::from_json(*state.current);
  std::optional<BudgetController> budget_now = detail::with_saved_state(budget_, state.budget);
  std::optional<HealthGuard> health_now = detail::with_saved_state(health_, state.health);
  std::optional<GradientScale> gradient_scale_now =
      detail::with_saved_state(gradient_scale_, state.gradient_scale);
  std::map<std::string, int64_t> group_sizes = initial_group_sizes_;
  int64_t graph_parameters = initial_graph_parameters_;
  double cost = initial_cost_;
  if (state.initial_sizes) {
    group_sizes = state.initial_sizes->at("groups").get<std::map<std::string, int64_t>>();
    graph_parameters = state.initial_sizes->at("parameters").get<int64_t>();
    cost = state.initial_sizes->at("cost").get<double>();
  }
  const auto parameters = model_.get().parameters();
  const auto device = parameters.empty() ? torch::Device(torch::kCPU) : parameters.front().device();
  for (auto& peaks : state.activity) {
    if (peaks.defined())
      peaks = peaks.to(device, torch::kFloat);
  }

  // Taken over; the noise generators first, since their states are checked only as they are set
  // (all or nothing).
  if (noise_)
    noise_->set_generator_states(state.noise_states);
  step_ = state.step;
  prune_events_ = state.prune_events;
  skipped_steps_ = state.skipped_steps;
  initial_group_sizes_ = std::move(group_sizes);
  initial_graph_parameters_ = graph_parameters;
  initial_cost_ = cost;
  initial_ = std::move(initial);
  if (restored) {
    warnings_ = detail::merge_warnings(std::move(restored->warnings), warnings_);
    restored->warnings.clear();
  }
  restored_ = std::move(restored);
  budget_ = std::move(budget_now);
  health_ = std::move(health_now);
  gradient_scale_ = std::move(gradient_scale_now);
  if (state.pinned_groups)
    pinned_groups_ = std::move(*state.pinned_groups);
  // The graph is rediscovered at the next backward(); the activity waits for it.
  graph_.reset();
  activity_.reset();
  regularizer_.set_weights({});  // they follow the graph, set again at its discovery
  restored_activity_.emplace(std::move(state.activity), state.activity_observations);
}

}  // namespace demon
