#pragma once
// DemonPruner's state as its archive holds it: what save() writes and load() reads, read whole
// and checked for damage before the pruner takes any of it over (a checkpoint that fails to load
// leaves the pruner as it was).

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace demon::detail {

struct SavedPrunerState {
  nlohmann::json options;  ///< DemonOptions::to_json()
  int64_t step = 0;
  int64_t prune_events = 0;
  int64_t skipped_steps = 0;
  /// {"groups": {name: width}, "parameters": n, "cost": c}: the model as first seen.
  std::optional<nlohmann::json> initial_sizes;
  /// ModelSummary::to_json() of the model as first seen, and as saved (with the warnings so
  /// far); absent when empty.
  std::optional<nlohmann::json> initial, current;
  /// The parts' own states (BudgetController, HealthGuard, GradientScale: to_json()) as text, ""
  /// when the saving pruner had none; parsed by the pruner only for the parts it has.
  std::string budget, health, gradient_scale;
  std::optional<std::map<std::string, std::string>> pinned_groups;
  /// The noise generators' states by device name.
  std::map<std::string, torch::Tensor> noise_states;
  int64_t activity_observations = 0;
  /// Each activity site's peaks since the last prune event (on the CPU); undefined where the
  /// site was not observed.
  std::vector<torch::Tensor> activity;
};

void write_pruner_state(torch::serialize::OutputArchive& archive, const SavedPrunerState& state);

/// Throws ValueError ("demon::DemonPruner::load: damaged state: ...") for an archive that is not
/// a whole pruner state.
SavedPrunerState read_pruner_state(torch::serialize::InputArchive& archive);

/// Parses JSON of the pruner's saved state, refusing numbers no int64 holds (nlohmann's
/// conversion of one to an integer field would be undefined behaviour; demon never writes one).
nlohmann::json parse_state(const std::string& text);

/// A copy of `part` with the state `text` (JSON) restored, or the copy as it is when the pruner
/// has no such part or the checkpoint none for it (one from before the part existed): the
/// pruner takes the copy over only when the whole checkpoint has loaded.
template <typename Part>
std::optional<Part> with_saved_state(const std::optional<Part>& part, const std::string& text) {
  std::optional<Part> copy = part;
  if (copy && !text.empty())
    copy->load_json(parse_state(text));
  return copy;
}

/// The warnings of a resumed run: the run's own (`saved`) first, then those of `current` it did
/// not have.
std::vector<std::string> merge_warnings(std::vector<std::string> saved,
                                        const std::vector<std::string>& current);

}  // namespace demon::detail
