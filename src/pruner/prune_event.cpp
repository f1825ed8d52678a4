// DemonPruner's prune event: when it is due, the evidence the death check gathers, the units the
// criterion picks from it and the cut policy lets through, the cut checked by the forward probe,
// and its report. Each step is a unit of its own under src/pruner/; this file wires them in the
// order of an event.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "demon/errors.h"
#include "demon/pruner.h"
#include "demon/surgery.h"
#include "detail/user_text.h"
#include "pruner/cut_policy.h"
#include "pruner/data_parallel.h"
#include "pruner/death_evidence.h"
#include "pruner/diagnostics.h"
#include "pruner/forward_check.h"
#include "pruner/pressure.h"

namespace demon {

bool DemonPruner::prune_due() const {
  return prune_due_at(step_);
}

bool DemonPruner::prune_due_at(int64_t step) const {
  const bool periodic = step >= options_.prune_start() && step % options_.prune_every() == 0;
  const bool final_step = options_.prune_at_end() && step == options_.total_steps();
  return periodic || final_step;
}

std::vector<double> DemonPruner::eval_peaks(const std::vector<torch::Tensor>& batches,
                                            const Forward& forward) {
  if (!graph_) {
    throw StateError(
        "demon::DemonPruner::check_death: the model's structure is not known yet; call "
        "backward() once first");
  }
  if (batches.empty() || !forward) {
    throw ValueError("demon::DemonPruner::check_death: needs batches and a forward");
  }
  auto peaks = detail::eval_mode_peaks(*graph_, model_.get(), forward, batches, options_.epsilon());
  if (data_parallel_)
    data_parallel_->max_over_ranks(peaks, collective_device());
  return peaks;
}

std::vector<int64_t> DemonPruner::check_death(const std::vector<torch::Tensor>& batches,
                                              const Forward& forward) {
  UnitEvidence evidence;
  evidence.peak = eval_peaks(batches, forward);
  evidence.graph = &*graph_;
  return DeadUnits(options_.epsilon()).select(evidence);
}

void DemonPruner::set_death_check(std::vector<torch::Tensor> batches, Forward forward) {
  if (!forward) {
    forward = forward_;
  }
  if (batches.empty() || !forward) {
    throw ValueError(
        "demon::DemonPruner::set_death_check: needs batches and a forward (the model's own is "
        "not known: pass one, or call set_forward first)");
  }
  check_batches_ = std::move(batches);
  check_forward_ = std::move(forward);
}

void DemonPruner::require_death_check_data(int64_t step) const {
  const DeathCheck check = options_.death_check();
  if (options_.prune() && check != DeathCheck::kTrain && check_batches_.empty() &&
      prune_due_at(step)) {
    throw StateError("demon::DemonPruner: step " + std::to_string(step) +
                     " is a prune event, and death_check \"" + to_string(check) +
                     "\" needs set_death_check() with batches to check; nothing was "
                     "changed");
  }
}

UnitEvidence DemonPruner::evidence(bool train_only) {
  const DeathCheck check = train_only ? DeathCheck::kTrain : options_.death_check();
  std::vector<double> train_peaks;
  if (check != DeathCheck::kEval) {
    train_peaks = activity_.unit_peaks(*graph_);
    if (data_parallel_)  // a unit active on any rank's data is active
      data_parallel_->max_over_ranks(train_peaks, collective_device());
  }
  const bool exact_default = dynamic_cast<const DeadUnits*>(criterion_.get()) != nullptr;
  return detail::death_evidence(*graph_, check, std::move(train_peaks), exact_default,
                                options_.epsilon(),
                                [this] { return eval_peaks(check_batches_, check_forward_); });
}

PruneOptions DemonPruner::cut_options() const {
  return detail::cut_floors(options_, initial_group_sizes_);
}

void DemonPruner::update_pressure() {
  std::vector<std::string> scale_names;
  for (const auto& scale : regularizer_.scales())
    scale_names.push_back(scale.name);
  regularizer_.set_weights(detail::scale_entry_weights(
      *graph_, detail::unit_pressure(*graph_, options_, cut_options()), scale_names));
}

bool DemonPruner::probe_ready() {
  if (options_.forward_check() == ForwardCheck::kOff || probe_unusable_) {
    return false;
  }
  const std::string problem = detail::probe_problem(model_.get(), forward_, probe_input_);
  if (problem.empty()) {
    return true;
  }
  probe_unusable_ = true;
  report_problem(problem, /*inaction=*/false);
  return false;
}

void DemonPruner::pin_group(int group, const std::string& reason) {
  pinned_groups_[graph_->groups()[group].name] = reason;
  detail::pin_named_groups(*graph_, {{graph_->groups()[group].name, reason}});
}

PruneResult DemonPruner::checked_cut(const std::vector<int64_t>& dead, PruneReport& report) {
  if (dead.empty() || !probe_ready()) {
    return prune_units(*graph_, dead, optimizer_.get(), cut_options());
  }
  const detail::Probe probe = [this](torch::Tensor* output) {
    return detail::run_probe(model_.get(), forward_, probe_input_, output);
  };
  detail::CheckedCut cut =
      detail::checked_cut(*graph_, dead, model_.get(), optimizer_.get(), cut_options(), probe,
                          options_.forward_check(), step_);
  report.output_change = cut.output_change;
  for (const auto& [group, what] : cut.broken) {
    pin_group(group, "cutting it broke the model's forward: " + what);
  }
  if (!cut.warning.empty()) {
    report_problem(cut.warning, /*inaction=*/false);
  }
  return cut.result;
}

PruneReport DemonPruner::prune_now() {
  PruneReport report;
  report.step = step_;
  report.death_check = to_string(options_.death_check());
  if (!graph_) {
    report.before = report.after = summary();
    return report;
  }
  for (const auto& callback : before_prune_)
    callback(step_);
  const DeathCheck check = options_.death_check();
  if (check != DeathCheck::kTrain && check_batches_.empty()) {
    detail::flush_output();
    throw StateError("demon::DemonPruner: death_check \"" + to_string(check) +
                     "\" needs set_death_check() with batches to check");
  }
  report.criterion = criterion_->name();
  report.exact = criterion_->exact();
  const UnitEvidence found = evidence(/*train_only=*/false);
  const std::optional<double> target =
      budget_ ? std::optional<double>(budget_->target()) : std::nullopt;
  const detail::CutLimit limit = detail::limit_cut(
      criterion_->select(found), found, *graph_, options_.max_cut_fraction(), target,
      [this](const std::vector<int64_t>& units) { return cost_ratio_without(&units); }, step_);
  if (!limit.collapse_warning.empty())
    report_problem(limit.collapse_warning, /*inaction=*/false);
  report.units_deferred = limit.deferred;
  const std::vector<int64_t>& dead = limit.units;
  if (data_parallel_)
    data_parallel_->require_same_units(dead, step_, collective_device());
  report.before = summary();
  const std::vector<int64_t> widths_before = detail::group_widths(*graph_);
  const PruneResult result = checked_cut(dead, report);
  cut_since_backward_ = cut_since_backward_ || !result.removed.empty();
  activity_.reset();
  update_pressure();
  if (budget_) {
    report.cost_ratio = cost_ratio();
    // A cut held back at the target (and carried out in full) has met it, to a unit.
    const bool met = limit.stopped_at_target && result.removed.size() == dead.size();
    report.lambda_after =
        lambda_unit() * budget_->update(step_, met ? std::min(report.cost_ratio, budget_->target())
                                                   : report.cost_ratio);
    // Short of the target at the first event from the step it was due: said once, with the fix
    // (the warnings travel in checkpoints, so a resumed run does not say it again).
    if (!budget_->reached() && step_ >= budget_->by_step() &&
        std::none_of(warnings_.begin(), warnings_.end(), detail::is_budget_shortfall)) {
      const double full_ceiling = options_.lambda_peak().value_or(options_.lambda_relative()) *
                                  options_.controller_max_lambda();
      const detail::Problem problem =
          detail::budget_shortfall_problem(*budget_, step_, report.cost_ratio, full_ceiling);
      report_problem(problem.message, problem.inaction);
    }
  }
  report.lambda_scale = health_ ? health_->lambda_factor() : 1.0;
  report.units_removed = static_cast<int64_t>(result.removed.size());
  report.units_kept_by_floor = static_cast<int64_t>(result.kept_by_floor.size());
  report.groups = detail::changed_groups(*graph_, widths_before);
  report.after = summary();
  ++prune_events_;
  for (const auto& callback : after_prune_)
    callback(report);
  return report;
}

}  // namespace demon
