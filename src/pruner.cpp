#include "demon/pruner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "demon/errors.h"
#include "demon/warnings.h"
#include "detail/user_text.h"
#include "pruner/cost_model.h"
#include "pruner/cut_policy.h"
#include "pruner/data_parallel.h"
#include "pruner/death_evidence.h"
#include "pruner/diagnostics.h"
#include "pruner/forward_check.h"
#include "pruner/nonfinite_gradient.h"
#include "pruner/optimizer_family.h"

namespace demon {

namespace {

using detail::flush_output;

template <typename Ref>
Ref require_non_null(Ref ref, const char* what) {
  if (!ref) {
    throw ValueError(std::string("demon::DemonPruner: ") + what + " is null");
  }
  return ref;
}

// The options with the run's length and λ resolved, validated.
DemonOptions resolved(DemonOptions options, const torch::optim::Optimizer* optimizer) {
  options.validate();
  options.total_steps(options.run_steps());
  options.prune_every(options.effective_prune_every());
  if (!options.controller_max_growth() && optimizer != nullptr) {
    options.controller_max_growth(default_controller_max_growth(*optimizer));
  }
  return options;
}

}  // namespace

DemonPruner::DemonPruner(ModelRef model, OptimizerRef optimizer, DemonOptions options)
    : model_(require_non_null(std::move(model), "model")),
      optimizer_(require_non_null(std::move(optimizer), "optimizer")),
      options_(resolved(options, optimizer_.get())),
      lambda_schedule_(options_.lambda_schedule()),
      sigma_schedule_(options_.sigma_schedule()),
      regularizer_(model_.get(), options_.regularizer()),
      activity_(options_.epsilon()),
      forward_(model_.forward()) {
  detail::require_supported(*optimizer_.get());
  if (options_.noise()) {
    noise_.emplace(detail::optimizer_params(*optimizer_.get()), options_.noise_mode(),
                   options_.seed());
  }
  criterion_ = detail::criterion_for(options_);
  // The schedule's and the controller's λ are in the gradient scale's units when λ is automatic.
  const double lambda_peak = options_.lambda_peak().value_or(options_.lambda_relative());
  if (options_.target() > 0.0) {
    if (!(lambda_peak > 0.0)) {
      throw ValueError("demon::DemonPruner: a budget (target) needs a starting lambda_peak > 0");
    }
    const auto by = std::max<int64_t>(
        1, std::llround(options_.target_by() * static_cast<double>(options_.total_steps())));
    budget_.emplace(options_.target(), by, lambda_peak, options_.controller_gain(),
                    *options_.controller_max_growth(), options_.prune_every(),
                    options_.controller_max_lambda());
  }
  if (!options_.lambda_peak() && options_.regularizer() != Regularizer::kNone) {
    // A budget's controller raises λ from the first steps, and the scales it pushes down pull
    // back harder: measured over the whole rise, the unit would grow with the controller's own
    // λ. Its measurement ends with the first prune interval, while λ is near its start.
    const int64_t until = budget_ ? std::min(options_.lambda_rise_steps(), options_.prune_every())
                                  : options_.lambda_rise_steps();
    gradient_scale_.emplace(until);
  }
  if (options_.health_guard() && options_.regularizer() != Regularizer::kNone) {
    health_.emplace(options_.health_rise(), options_.health_window(), options_.health_backoff());
  }
  if (const auto problem = detail::missing_scales_problem(options_.regularizer(), lambda_peak > 0.0,
                                                          !regularizer_.scales().empty()))
    report_problem(problem->message, problem->inaction);
  for (const auto& problem : detail::optimizer_coverage_problems(model_.get(), *optimizer_.get()))
    report_problem(problem.message, problem.inaction);
}

void DemonPruner::report_problem(const std::string& message, bool inaction) {
  if (inaction && options_.error_if_inactive()) {
    flush_output();
    throw ValueError("demon::DemonPruner: " + message);
  }
  if (std::find(warnings_.begin(), warnings_.end(), message) == warnings_.end()) {
    warnings_.push_back(message);
    warn(message);
  }
}

double DemonPruner::lambda_unit() const {
  return gradient_scale_ ? gradient_scale_->value() : 1.0;
}

double DemonPruner::current_lambda() const {
  const double lambda = lambda_unit() * (budget_ ? budget_->lambda() : lambda_schedule_(step_));
  return health_ ? lambda * health_->lambda_factor() : lambda;
}

double DemonPruner::lambda_peak() const {
  if (options_.regularizer() == Regularizer::kNone) {
    return 0.0;
  }
  return lambda_unit() * options_.lambda_peak().value_or(options_.lambda_relative());
}

double DemonPruner::current_sigma() const {
  if (!options_.noise() || (budget_ && budget_->reached()))
    return 0.0;
  return sigma_schedule_(step_);
}

void DemonPruner::set_criterion(std::shared_ptr<DeathCriterion> criterion) {
  if (!criterion) {
    throw ValueError("demon::DemonPruner::set_criterion: the criterion is null");
  }
  criterion_ = std::move(criterion);
}

void DemonPruner::set_cost(std::function<double(const DependencyGraph&)> cost) {
  if (!cost) {
    throw ValueError("demon::DemonPruner::set_cost: needs a function");
  }
  cost_ = std::move(cost);
  if (graph_)
    initial_cost_ = cost_(*graph_);
}

double DemonPruner::cost_ratio() const {
  return cost_ratio_without(nullptr);
}

double DemonPruner::cost_ratio_without(const std::vector<int64_t>* units) const {
  if (!graph_ || !initial_)
    return 1.0;
  const detail::CostBaseline baseline{initial_->initial_flops, initial_graph_parameters_,
                                      initial_cost_};
  return detail::cost_fraction(options_.target_metric(), *graph_, baseline, cost_, units);
}

void DemonPruner::zero_grad() {
  optimizer_.get()->zero_grad();
}

void DemonPruner::set_forward(Forward forward) {
  if (!forward) {
    throw ValueError("demon::DemonPruner::set_forward: needs a function");
  }
  forward_ = std::move(forward);
  probe_unusable_ = false;
}

void DemonPruner::set_discovery_options(DiscoveryOptions options) {
  if (graph_) {
    throw StateError(
        "demon::DemonPruner::set_discovery_options: the structure was discovered at the first "
        "backward(); set the options before it");
  }
  discovery_ = std::move(options);
}

void DemonPruner::set_probe_input(const torch::Tensor& input) {
  if (!input.defined() || input.dim() == 0 || input.size(0) == 0) {
    throw ValueError(
        "demon::DemonPruner::set_probe_input: needs a batch (a tensor with samples along dim 0)");
  }
  probe_input_ = detail::probe_batch(input);
  probe_input_given_ = true;
  probe_unusable_ = false;
}

void DemonPruner::discover(const torch::Tensor& root) {
  graph_ = DependencyGraph::discover(model_.get(), root, discovery_);
  const bool first = !initial_;
  if (!initial_) {
    initial_ = summarize(*graph_, model_.get());
  }
  for (const auto& group : graph_->groups()) {
    initial_group_sizes_.emplace(group.name, group.initial_size);  // first sighting only
  }
  if (initial_graph_parameters_ == 0)
    initial_graph_parameters_ = graph_->parameters_without({});
  if (cost_ && !(initial_cost_ > 0.0))
    initial_cost_ = cost_(*graph_);
  detail::pin_named_groups(*graph_, pinned_groups_);
  update_pressure();
  if (!probe_input_given_)
    probe_input_ = detail::probe_input_from(root);
  if (first) {
    for (const auto& problem :
         detail::discovery_problems(*graph_, options_.group_min_width(), initial_group_sizes_))
      report_problem(problem.message, problem.inaction);
  }
  activity_.reset();
  if (restored_activity_) {
    auto& [records, observations] = *restored_activity_;
    detail::adopt_saved_activity(activity_, *graph_, std::move(records), observations);
    restored_activity_.reset();
  }
}

void DemonPruner::backward(const torch::Tensor& loss) {
  if (budget_ && options_.target_metric() == BudgetMetric::kCustom && !cost_) {
    throw StateError(
        "demon::DemonPruner: target_metric \"custom\" needs set_cost() before the first "
        "backward()");
  }
  if (options_.prune()) {
    // Same structure as discovered: read it. Otherwise (first step, or a model whose graph
    // changed) discover it anew; activity gathered for the old structure is dropped.
    if (!graph_ || !activity_.observe(*graph_, loss, /*same_structure=*/true)) {
      // A cut may change the forward itself (a ChannelSelection that was the identity now
      // selects): no reason to warn about the user's control flow.
      if (graph_ && !cut_since_backward_) {
        report_problem(
            "the model's autograd graph changed between steps (data-dependent control flow?): "
            "each change discovers the structure anew and drops the activity seen since the "
            "last prune event, so units are judged only on steps since the last change; make "
            "the training forward the same every step, or set prune(false)",
            /*inaction=*/false);
      }
      discover(loss);
      activity_.observe(*graph_, loss, /*same_structure=*/true);
    }
    cut_since_backward_ = false;
  }
  if (health_) {
    health_->observe(loss);
  }
  loss.backward();
}

void DemonPruner::skip_step() {
  require_death_check_data(step_ + 1);
  ++skipped_steps_;
  finish_step();
}

void DemonPruner::step() {
  require_death_check_data(step_ + 1);
  if (data_parallel_)
    data_parallel_->average_gradients(*optimizer_.get());
  if (options_.nonfinite_gradients() != NonFiniteGradients::kOff) {
    const std::string bad = detail::first_nonfinite_gradient(*optimizer_.get(), model_.get());
    if (!bad.empty()) {
      const std::string what =
          "step " + std::to_string(step_) + ": the gradient of " + bad + " holds NaN or Inf";
      if (options_.nonfinite_gradients() == NonFiniteGradients::kError)
        throw RuntimeError("demon::DemonPruner: " + what);
      // Every skip up to 10, then every 100th: a diverged run says so without flooding the log.
      if (skipped_steps_ < 10 || (skipped_steps_ + 1) % 100 == 0) {
        warn("demon::DemonPruner: " + what + "; step skipped (" +
             std::to_string(skipped_steps_ + 1) + " so far)");
      }
      ++skipped_steps_;  // skip_step() without its check, done above
      finish_step();
      return;
    }
  }
  // The automatic λ's unit, from the loss gradient alone (before the regularizer adds to it).
  if (gradient_scale_ && gradient_scale_->measuring(step_)) {
    gradient_scale_->observe(regularizer_.scales());
  }
  const double lambda = current_lambda();
  const double sigma = current_sigma();
  // The live mask comes from the loss gradient alone, before the regularizer writes into it.
  if (noise_ && sigma > 0.0) {
    noise_->capture_live_mask();
  }
  regularizer_.apply(lambda);
  optimizer_.get()->step();
  if (noise_ && sigma > 0.0) {
    noise_->apply(sigma);
  }
  finish_step();
}

int64_t DemonPruner::check_every() const {
  return options_.controller_every() > 0 ? options_.controller_every()
                                         : std::max<int64_t>(1, options_.prune_every() / 4);
}

void DemonPruner::check_health() {
  double rise = health_->measure();
  if (data_parallel_) {
    // The ranks' worst: every rank then makes the same decision, and λ stays identical.
    std::vector<double> rises{rise};
    data_parallel_->max_over_ranks(rises, collective_device());
    rise = rises.front();
  }
  // Under a budget, a loss rising halfway to the trip already says λ is as strong as this model
  // takes: the controller's ceiling comes down to the λ in force, before the damage the guard
  // would have to undo. (A fixed ceiling cannot serve every model: some lose their units only
  // at ten times the λ that collapses others.)
  if (budget_ && !budget_->reached() && !health_->tripped() && rise > 0.5 * options_.health_rise())
    budget_->cap(budget_->lambda());
  if (const HealthEvent* event = health_->update(step_, rise)) {
    warn("demon::DemonPruner: health guard: the training loss rose under the pressure at " +
         event->describe() +
         ". If this recurs, lower lambda_relative (or lambda_peak, if you set it) or set a target "
         "(budget); health_rise sets how "
         "much rise trips the guard, health_guard(false) turns it off");
  }
}

void DemonPruner::finish_step() {
  ++step_;
  const bool check = step_ % check_every() == 0;
  if (health_ && check) {
    check_health();
  }
  // The unit follows its measurement at the checks, and is final when the measurement ends.
  if (gradient_scale_ && step_ <= gradient_scale_->until_step() &&
      (check || step_ == gradient_scale_->until_step())) {
    gradient_scale_->refresh();
    if (step_ == gradient_scale_->until_step() && gradient_scale_->value() == 0.0) {
      const detail::Problem problem = detail::zero_gradient_scale_problem(step_);
      report_problem(problem.message, problem.inaction);
    }
  }
  if (options_.prune() && prune_due()) {
    prune_now();
  } else if (budget_ && !budget_->reached() && graph_ && !(health_ && health_->tripped())) {
    // (While the guard holds λ at 0, the controller waits: it would only wind λ up.)
    if (check) {
      // Between events: the cost if the units dead so far, and with a lead the dying ones,
      // were cut.
      const std::vector<int64_t> units = detail::projected_cut(
          *criterion_, evidence(/*train_only=*/true), options_.controller_lead());
      budget_->project(step_, cost_ratio_without(&units));
    }
  }
}

void DemonPruner::set_process_group(c10::intrusive_ptr<ProcessGroup> group,
                                    DataParallelOptions options) {
  auto data_parallel = std::make_shared<DataParallel>(std::move(group), options);
  if (options.broadcast_parameters())
    broadcast_module(model_.get(), data_parallel->group());
  data_parallel_ = std::move(data_parallel);
}

int DemonPruner::rank() const {
  return data_parallel_ ? data_parallel_->rank() : 0;
}

int DemonPruner::world_size() const {
  return data_parallel_ ? data_parallel_->world_size() : 1;
}

torch::Device DemonPruner::collective_device() {
  for (const auto& param : model_.get().parameters())
    return param.device();
  return torch::kCPU;
}

void DemonPruner::on_before_prune(std::function<void(int64_t)> callback) {
  before_prune_.push_back(std::move(callback));
}

void DemonPruner::on_prune(std::function<void(const PruneReport&)> callback) {
  after_prune_.push_back(std::move(callback));
}

ModelSummary DemonPruner::summary() const {
  ModelSummary s;
  if (graph_) {
    s = summarize(*graph_, model_.get(), initial_ ? &*initial_ : nullptr);
  } else {
    s = restored_ ? *restored_ : initial_.value_or(ModelSummary{});
    s.parameters = 0;
    for (const auto& p : model_.get().parameters())
      s.parameters += p.numel();
    if (!initial_)
      s.initial_parameters = s.parameters;
  }
  s.warnings = warnings_;
  if (health_) {
    s.health_events = health_->events();
  }
  return s;
}

}  // namespace demon
