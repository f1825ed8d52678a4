#include "pruner/death_evidence.h"

#include <algorithm>

#include "demon/activity.h"
#include "demon/errors.h"
#include "detail/model_run.h"
#include "detail/user_text.h"

namespace demon::detail {

std::vector<double> eval_mode_peaks(const DependencyGraph& graph, torch::nn::Module& model,
                                    const Forward& forward,
                                    const std::vector<torch::Tensor>& batches, double epsilon) {
  ActivityTracker tracker(epsilon);
  {
    TrainingModeGuard restore(model);
    model.eval();
    torch::AutoGradMode with_graph(true);  // the activations are read from the autograd graph
    for (const auto& batch : batches) {
      const torch::Tensor out = forward(like_model(batch, model));
      if (!tracker.observe(graph, out, /*same_structure=*/false)) {
        flush_output();
        throw RuntimeError(
            "demon::DemonPruner::check_death: the eval-mode forward pass does not run the "
            "activations of the training graph (in the same order, kinds and widths)");
      }
    }
  }
  return tracker.unit_peaks(graph);
}

UnitEvidence death_evidence(const DependencyGraph& graph, DeathCheck check,
                            std::vector<double> train_peaks, bool exact_criterion, double epsilon,
                            const std::function<std::vector<double>()>& eval_peaks) {
  UnitEvidence evidence;
  evidence.graph = &graph;
  if (check != DeathCheck::kEval) {
    evidence.peak = std::move(train_peaks);
  }
  if (check != DeathCheck::kTrain) {
    // "both" takes the larger peak of the two passes. With the exact rule nothing dead in
    // training mode means nothing dead at all: the eval-mode pass is spared.
    const bool any_dead_in_training = std::any_of(evidence.peak.begin(), evidence.peak.end(),
                                                  [&](double peak) { return peak <= epsilon; });
    if (check == DeathCheck::kEval || !exact_criterion || any_dead_in_training) {
      const auto eval = eval_peaks();
      if (evidence.peak.empty()) {
        evidence.peak = eval;
      } else {
        for (size_t u = 0; u < eval.size(); ++u)
          evidence.peak[u] = std::max(evidence.peak[u], eval[u]);
      }
    }
  }
  evidence.scale = unit_scales(graph);
  return evidence;
}

std::shared_ptr<DeathCriterion> criterion_for(const DemonOptions& options) {
  switch (options.criterion()) {
    case CriterionKind::kDead:
      break;
    case CriterionKind::kQuasiDead:
      return std::make_shared<QuasiDeadUnits>(options.quasi_dead_ratio());
    case CriterionKind::kSmallScale:
      return std::make_shared<SmallScales>(options.scale_threshold(), options.scale_fraction());
  }
  return std::make_shared<DeadUnits>(options.epsilon());
}

bool adopt_saved_activity(ActivityTracker& tracker, const DependencyGraph& graph,
                          std::vector<torch::Tensor> records, int64_t observations) {
  bool fits = records.size() == graph.sites().size();
  for (size_t s = 0; fits && s < records.size(); ++s) {
    fits = !records[s].defined() ||
           records[s].numel() == static_cast<int64_t>(graph.sites()[s].owner.size());
  }
  if (fits)
    tracker.set_peaks(std::move(records), observations);
  return fits;
}

}  // namespace demon::detail
