#pragma once
// The evidence a prune event decides from: each unit's peak |activation| in training mode (the
// batches since the last event), in eval mode (a pass over the death-check batches), or both.

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <vector>

#include "demon/activity.h"
#include "demon/criterion.h"
#include "demon/graph.h"
#include "demon/model_ref.h"
#include "demon/options.h"

namespace demon::detail {

/// Per unit of `graph`: the peak |activation| of an eval-mode pass of `forward` over `batches`
/// (each moved to the model's device and dtype), read from the autograd graph of each pass; the
/// model's training flag is restored after. Throws RuntimeError when a pass does not run the
/// training graph's activations (in the same order, kinds and widths).
std::vector<double> eval_mode_peaks(const DependencyGraph& graph, torch::nn::Module& model,
                                    const Forward& forward,
                                    const std::vector<torch::Tensor>& batches, double epsilon);

/// The evidence of a death check of kind `check` on `graph`: `train_peaks` (the training-mode
/// peaks; unused under DeathCheck::kEval) and, under kEval or kBoth, the peaks `eval_peaks()`
/// returns, the larger of the two per unit under kBoth. With an `exact_criterion` ("dead" at
/// `epsilon`), kBoth spares the eval-mode pass when nothing is dead in training mode: nothing can
/// then be dead in both. The scales are those of the graph's normalization layers.
UnitEvidence death_evidence(const DependencyGraph& graph, DeathCheck check,
                            std::vector<double> train_peaks, bool exact_criterion, double epsilon,
                            const std::function<std::vector<double>()>& eval_peaks);

/// The criterion `options` name (criterion, with its epsilon, quasi_dead_ratio or scale
/// threshold): what DemonPruner uses until set_criterion replaces it.
std::shared_ptr<DeathCriterion> criterion_for(const DemonOptions& options);

/// Hands `tracker` the per-site peaks a checkpoint saved, when they fit `graph` (one record per
/// activation site, each as wide as its site, or undefined); otherwise the tracker starts empty,
/// as after a prune event. Returns whether they fit.
bool adopt_saved_activity(ActivityTracker& tracker, const DependencyGraph& graph,
                          std::vector<torch::Tensor> records, int64_t observations);

}  // namespace demon::detail
