#pragma once

#include <torch/nn/module.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "demon/graph.h"
#include "demon/health.h"

namespace demon {

/// Output width of one layer the engine knows (channels / features).
struct LayerWidth {
  std::string name;
  std::string kind;
  int64_t initial = 0;
  int64_t current = 0;
};

/// Where the model stands against its initial (dense) self.
struct ModelSummary {
  std::vector<LayerWidth> layers;
  /// Neurons: units whose channels an activation site reads (the paper's "units").
  int64_t initial_units = 0;
  int64_t live_units = 0;
  /// Elements of all the model's parameters.
  int64_t initial_parameters = 0;
  int64_t parameters = 0;
  /// Forward FLOPs per sample of convolution and linear layers, for the input shape seen when
  /// the graph was discovered.
  int64_t initial_flops = 0;
  int64_t flops = 0;
  /// What DemonPruner could not do on this model (no scale for λ, cuts that broke the forward);
  /// empty from summarize().
  std::vector<std::string> warnings;
  /// Each time the health guard backed λ off (see HealthGuard); empty from summarize().
  std::vector<HealthEvent> health_events;

  /// 1 − live units / initial units.
  double neural_sparsity() const;
  /// 1 − parameters / initial parameters.
  double parameter_sparsity() const;
  /// flops / initial flops.
  double flops_ratio() const;

  /// One line per layer (initial and current width), then the totals.
  std::string table() const;
  nlohmann::json to_json() const;
  /// Reads what to_json() wrote.
  static ModelSummary from_json(const nlohmann::json& json);
};

/// The state of `model` as seen through `graph`. `initial`, if given, supplies the initial
/// figures (layers matched by name); without it the current figures are also the initial ones.
ModelSummary summarize(const DependencyGraph& graph, const torch::nn::Module& model,
                       const ModelSummary* initial = nullptr);

/// One prune event.
struct PruneReport {
  struct GroupChange {
    std::string name;
    int64_t before = 0;
    int64_t after = 0;
  };
  int64_t step = 0;
  /// Which evidence chose the units (DemonOptions::death_check): "train" (activity since the last
  /// prune, BatchNorm with batch statistics), "eval" (eval-mode death check), "both".
  std::string death_check;
  /// The death criterion that chose them (DemonOptions::criterion: "dead", "quasi_dead",
  /// "small_scale", or a user's DeathCriterion::name()), and whether it promises unchanged
  /// outputs.
  std::string criterion = "dead";
  bool exact = true;
  /// Largest |output difference| of the model on the forward check's probe input (eval mode),
  /// before against after the cut; NaN when the probe did not run.
  double output_change = std::numeric_limits<double>::quiet_NaN();
  int64_t units_removed = 0;
  /// Units selected but left for later by the collapse guard's max_cut_fraction, or kept because
  /// the budget's target was reached.
  int64_t units_deferred = 0;
  /// With a budget: the cost ratio after the event, and the controller's λ from now on.
  double cost_ratio = std::numeric_limits<double>::quiet_NaN();
  double lambda_after = std::numeric_limits<double>::quiet_NaN();
  /// The health guard's factor on λ after the event: 1 untouched, 0 held off while the loss
  /// recovers, between them after a recovery (see HealthGuard).
  double lambda_scale = 1.0;
  /// Units found dead but kept by the width floors (min_width, its fraction, width_multiple).
  int64_t units_kept_by_floor = 0;
  std::vector<GroupChange> groups;  ///< groups that lost units
  ModelSummary before;
  ModelSummary after;

  std::string table() const;
  nlohmann::json to_json() const;
};

}  // namespace demon
