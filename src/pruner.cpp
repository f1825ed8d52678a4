#include "demon/pruner.h"

#include <torch/optim/lbfgs.h>

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

#include "demon/surgery.h"

namespace demon {
namespace {

template <typename T>
std::shared_ptr<T> require_non_null(std::shared_ptr<T> pointer, const char* what) {
  if (!pointer) {
    throw std::invalid_argument(std::string("demon::DemonPruner: ") + what + " is null");
  }
  return pointer;
}

const DemonOptions& validated(const DemonOptions& options) {
  options.validate();
  return options;
}

std::vector<torch::Tensor> optimizer_params(const torch::optim::Optimizer& optimizer) {
  std::vector<torch::Tensor> params;
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& param : group.params()) {
      params.push_back(param);
    }
  }
  return params;
}

// Restores a module's training flag when it goes out of scope, exception or not.
class TrainingModeGuard {
 public:
  explicit TrainingModeGuard(torch::nn::Module& module)
      : module_(module), was_training_(module.is_training()) {}
  ~TrainingModeGuard() { module_.train(was_training_); }
  TrainingModeGuard(const TrainingModeGuard&) = delete;
  TrainingModeGuard& operator=(const TrainingModeGuard&) = delete;

 private:
  torch::nn::Module& module_;
  bool was_training_;
};

}  // namespace

DemonPruner::DemonPruner(std::shared_ptr<torch::nn::Module> model,
                         std::shared_ptr<torch::optim::Optimizer> optimizer, DemonOptions options)
    : model_(require_non_null(std::move(model), "model")),
      optimizer_(require_non_null(std::move(optimizer), "optimizer")),
      options_(validated(options)),
      lambda_schedule_(options_.lambda_schedule()),
      sigma_schedule_(options_.sigma_schedule()),
      regularizer_(*model_, options_.regularizer()),
      activity_(options_.epsilon()) {
  if (dynamic_cast<torch::optim::LBFGS*>(optimizer_.get()) != nullptr) {
    throw std::invalid_argument(
        "demon::DemonPruner: LBFGS needs a closure per step and keeps flat history; use a "
        "first-order optimizer (SGD, Adam, AdamW, RMSprop, Adagrad)");
  }
  if (options_.noise()) {
    noise_.emplace(optimizer_params(*optimizer_), options_.noise_mode(), options_.seed());
  }
}

void DemonPruner::zero_grad() {
  optimizer_->zero_grad();
}

void DemonPruner::discover(const torch::Tensor& root) {
  graph_ = DependencyGraph::discover(*model_, root);
  if (!initial_) {
    initial_ = summarize(*graph_, *model_);
  }
  activity_.reset();
  if (restored_activity_) {
    auto& [records, observations] = *restored_activity_;
    bool fits = records.size() == graph_->sites().size();
    for (size_t s = 0; fits && s < records.size(); ++s) {
      fits = !records[s].defined() ||
             records[s].numel() == static_cast<int64_t>(graph_->sites()[s].owner.size());
    }
    if (fits) {
      activity_.set_records(std::move(records), observations);
    }
    restored_activity_.reset();
  }
}

void DemonPruner::backward(const torch::Tensor& loss) {
  if (options_.prune()) {
    // Same structure as discovered: read it. Otherwise (first step, or a model whose graph
    // changed) discover it anew; activity gathered for the old structure is dropped.
    if (!graph_ || !activity_.observe(*graph_, loss, /*same_structure=*/true)) {
      discover(loss);
      activity_.observe(*graph_, loss, /*same_structure=*/true);
    }
  }
  loss.backward();
}

void DemonPruner::step() {
  const double lambda = current_lambda();
  const double sigma = current_sigma();
  // The live mask comes from the loss gradient alone, before the regularizer writes into it.
  if (noise_ && sigma > 0.0) {
    noise_->capture_live_mask();
  }
  regularizer_.apply(lambda);
  optimizer_->step();
  if (noise_ && sigma > 0.0) {
    noise_->apply(sigma);
  }
  ++step_;
  if (options_.prune() && prune_due()) {
    prune_now();
  }
}

bool DemonPruner::prune_due() const {
  const bool periodic = step_ >= options_.prune_start() && step_ % options_.prune_every() == 0;
  const bool final_step = options_.prune_at_end() && step_ == options_.total_steps();
  return periodic || final_step;
}

std::vector<int64_t> DemonPruner::check_death(const std::vector<torch::Tensor>& batches,
                                              const Forward& forward) {
  if (!graph_) {
    throw std::logic_error(
        "demon::DemonPruner::check_death: the model's structure is not known yet; call "
        "backward() once first");
  }
  if (batches.empty() || !forward) {
    throw std::invalid_argument("demon::DemonPruner::check_death: needs batches and a forward");
  }
  ActivityTracker tracker(options_.epsilon());
  {
    TrainingModeGuard restore(*model_);
    model_->eval();
    torch::AutoGradMode with_graph(true);  // the activations are read from the autograd graph
    for (const auto& batch : batches) {
      const torch::Tensor out = forward(batch);
      if (!tracker.observe(*graph_, out, /*same_structure=*/false)) {
        throw std::runtime_error(
            "demon::DemonPruner::check_death: the eval-mode forward pass does not run the "
            "activations of the training graph (in the same order, kinds and widths)");
      }
    }
  }
  return tracker.dead_units(*graph_);
}

void DemonPruner::set_death_check(std::vector<torch::Tensor> batches, Forward forward) {
  if (batches.empty() || !forward) {
    throw std::invalid_argument("demon::DemonPruner::set_death_check: needs batches and a forward");
  }
  check_batches_ = std::move(batches);
  check_forward_ = std::move(forward);
}

void DemonPruner::on_before_prune(std::function<void(int64_t)> callback) {
  before_prune_.push_back(std::move(callback));
}

void DemonPruner::on_prune(std::function<void(const PruneReport&)> callback) {
  after_prune_.push_back(std::move(callback));
}

std::vector<int64_t> DemonPruner::dead_units() {
  const DeathCheck check = options_.death_check();
  std::vector<int64_t> train;
  if (check != DeathCheck::kEval) {
    train = activity_.dead_units(*graph_);
    if (check == DeathCheck::kTrain)
      return train;
  }
  if (check_batches_.empty()) {
    throw std::logic_error("demon::DemonPruner: death_check \"" + to_string(check) +
                           "\" needs set_death_check() with batches to check");
  }
  std::vector<int64_t> eval = check_death(check_batches_, check_forward_);
  if (check == DeathCheck::kEval)
    return eval;
  std::vector<int64_t> both;
  std::sort(eval.begin(), eval.end());
  for (int64_t u : train) {
    if (std::binary_search(eval.begin(), eval.end(), u))
      both.push_back(u);
  }
  return both;
}

PruneReport DemonPruner::prune_now() {
  PruneReport report;
  report.step = step_;
  report.criterion = to_string(options_.death_check());
  if (!graph_) {
    report.before = report.after = summary();
    return report;
  }
  for (const auto& callback : before_prune_)
    callback(step_);
  const std::vector<int64_t> dead = dead_units();
  report.before = summary();
  std::map<int, int64_t> sizes_before;
  for (size_t g = 0; g < graph_->groups().size(); ++g) {
    sizes_before[static_cast<int>(g)] = static_cast<int64_t>(graph_->groups()[g].units.size());
  }
  const PruneResult result =
      prune_units(*graph_, dead, optimizer_.get(), PruneOptions().min_width(options_.min_width()));
  activity_.reset();
  report.units_removed = static_cast<int64_t>(result.removed.size());
  report.units_kept_for_min_width = static_cast<int64_t>(result.kept_for_min_width.size());
  for (size_t g = 0; g < graph_->groups().size(); ++g) {
    const auto after = static_cast<int64_t>(graph_->groups()[g].units.size());
    if (after != sizes_before[static_cast<int>(g)]) {
      report.groups.push_back({graph_->groups()[g].name, sizes_before[static_cast<int>(g)], after});
    }
  }
  report.after = summary();
  ++prune_events_;
  for (const auto& callback : after_prune_)
    callback(report);
  return report;
}

ModelSummary DemonPruner::summary() const {
  if (graph_) {
    return summarize(*graph_, *model_, initial_ ? &*initial_ : nullptr);
  }
  ModelSummary s = initial_.value_or(ModelSummary{});
  s.parameters = 0;
  for (const auto& p : model_->parameters())
    s.parameters += p.numel();
  if (!initial_)
    s.initial_parameters = s.parameters;
  return s;
}

void DemonPruner::save(torch::serialize::OutputArchive& archive) const {
  archive.write("step", c10::IValue(step_));
  archive.write("prune_events", c10::IValue(prune_events_));
  archive.write("options", c10::IValue(to_json(options_).dump()));
  archive.write("initial", c10::IValue(initial_ ? initial_->to_json().dump() : std::string()));
  nlohmann::json devices = nlohmann::json::array();
  if (noise_) {
    for (const auto& [device, state] : noise_->generator_states()) {
      archive.write("noise_" + std::to_string(devices.size()), state);
      devices.push_back(device);
    }
  }
  archive.write("noise_devices", c10::IValue(devices.dump()));
  const auto& records = activity_.records();
  archive.write("activity_observations", c10::IValue(activity_.observations()));
  archive.write("activity_sites", c10::IValue(static_cast<int64_t>(records.size())));
  for (size_t s = 0; s < records.size(); ++s) {
    // An unobserved site is saved as an empty tensor.
    archive.write("activity_" + std::to_string(s), records[s].defined()
                                                       ? records[s].to(torch::kCPU)
                                                       : torch::empty({0}, torch::kBool));
  }
}

void DemonPruner::load(torch::serialize::InputArchive& archive) {
  c10::IValue value;
  archive.read("options", value);
  const auto saved = options_from_json(nlohmann::json::parse(value.toStringRef()));
  if (to_json(saved) != to_json(options_)) {
    // Different options would make a "resumed" run a different run.
    throw std::invalid_argument(
        "demon::DemonPruner::load: the checkpoint was written with other DemonOptions: " +
        to_json(saved).dump());
  }
  archive.read("step", value);
  step_ = value.toInt();
  archive.read("prune_events", value);
  prune_events_ = value.toInt();
  archive.read("initial", value);
  if (!value.toStringRef().empty()) {
    initial_ = ModelSummary::from_json(nlohmann::json::parse(value.toStringRef()));
  }
  archive.read("noise_devices", value);
  const auto devices = nlohmann::json::parse(value.toStringRef());
  std::map<std::string, torch::Tensor> states;
  for (size_t i = 0; i < devices.size(); ++i) {
    torch::Tensor state;
    archive.read("noise_" + std::to_string(i), state);
    states[devices[i].get<std::string>()] = state;
  }
  if (noise_)
    noise_->set_generator_states(states);
  archive.read("activity_observations", value);
  const int64_t observations = value.toInt();
  archive.read("activity_sites", value);
  std::vector<torch::Tensor> records(static_cast<size_t>(value.toInt()));
  const auto device = model_->parameters().empty() ? torch::Device(torch::kCPU)
                                                   : model_->parameters().front().device();
  for (size_t s = 0; s < records.size(); ++s) {
    torch::Tensor record;
    archive.read("activity_" + std::to_string(s), record);
    if (record.numel() > 0)
      records[s] = record.to(device);
  }
  // The graph is rediscovered at the next backward(); the activity waits for it.
  graph_.reset();
  activity_.reset();
  restored_activity_.emplace(std::move(records), observations);
}

}  // namespace demon
