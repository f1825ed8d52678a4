#include "pruner/forward_check.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "demon/errors.h"
#include "detail/autograd_nodes.h"
#include "detail/model_run.h"
#include "detail/model_snapshot.h"
#include "detail/user_text.h"

namespace demon::detail {

std::string run_probe(torch::nn::Module& model, const Forward& forward, const torch::Tensor& input,
                      torch::Tensor* output) {
  TrainingModeGuard restore(model);
  model.eval();
  torch::NoGradGuard no_grad;
  try {
    torch::Tensor out = forward(like_model(input, model));
    if (output != nullptr)
      *output = out.detach().to(torch::kDouble);
    return {};
  } catch (const std::exception& error) {
    std::string text = error.what();
    // c10::Error appends a C++ backtrace; the first line is the message.
    const auto newline = text.find('\n');
    return newline == std::string::npos ? text : text.substr(0, newline);
  }
}

std::string probe_problem(torch::nn::Module& model, const Forward& forward,
                          const torch::Tensor& input) {
  if (!forward || !input.defined()) {
    return std::string("prune events cannot check that the cut model still runs: ") +
           (!forward ? "its forward is not known (pass the model as a TORCH_MODULE holder or as "
                       "a module with forward(Tensor), or call set_forward())"
                     : "no input was found in the autograd graph (call set_probe_input())") +
           "; a cut that breaks the forward will only show at the next training step";
  }
  // The probe must run through the uncut model, or it can prove nothing about the cut.
  const std::string before = run_probe(model, forward, input);
  if (!before.empty()) {
    return "prune events cannot check that the cut model still runs: the probe input " +
           c10::str(input.sizes()) + " does not run through the model even before the cut (" +
           before + "); call set_probe_input() with a batch the forward accepts";
  }
  return {};
}

namespace {

// The groups of `dead` cut one at a time, each kept when the forward still runs after it.
CheckedCut cut_by_group(DependencyGraph& graph, const std::vector<int64_t>& dead,
                        torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                        const PruneOptions& options, const Probe& probe,
                        int64_t parameters_before) {
  std::map<int, std::vector<int64_t>> by_group;
  for (int64_t u : dead)
    by_group[graph.units()[u].group].push_back(u);
  CheckedCut cut;
  cut.result.parameters_before = parameters_before;
  cut.result.parameters_after = parameters_before;
  for (const auto& [group, units] : by_group) {
    const DependencyGraph graph_now = graph;
    ModelSnapshot before_group(model, optimizer);
    const int64_t width = static_cast<int64_t>(graph.groups()[group].units.size());
    PruneResult part = prune_units(graph, units, optimizer, options);
    const std::string error = probe(nullptr);
    if (error.empty()) {
      auto& result = cut.result;
      result.removed.insert(result.removed.end(), part.removed.begin(), part.removed.end());
      result.kept_by_floor.insert(result.kept_by_floor.end(), part.kept_by_floor.begin(),
                                  part.kept_by_floor.end());
      result.parameters_after = part.parameters_after;
      continue;
    }
    before_group.restore();
    graph = graph_now;
    std::ostringstream what;
    what << graph.groups()[group].name << " (" << width << " -> "
         << width - static_cast<int64_t>(part.removed.size()) << " units): " << error;
    cut.broken.emplace_back(group, what.str());
  }
  return cut;
}

}  // namespace

CheckedCut checked_cut(DependencyGraph& graph, const std::vector<int64_t>& dead,
                       torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                       const PruneOptions& options, const Probe& probe, ForwardCheck mode,
                       int64_t step) {
  torch::Tensor output_before, output_after;
  probe(&output_before);
  DependencyGraph graph_before = graph;
  ModelSnapshot snapshot(model, optimizer);
  CheckedCut whole;
  whole.result = prune_units(graph, dead, optimizer, options);
  const std::string error = probe(&output_after);
  if (error.empty()) {
    if (output_before.defined() && output_after.sizes() == output_before.sizes())
      whole.output_change = (output_after - output_before).abs().max().item<double>();
    return whole;
  }
  // Undo, then cut group by group to find the groups whose cut breaks the forward.
  snapshot.restore();
  graph = graph_before;
  CheckedCut cut =
      cut_by_group(graph, dead, model, optimizer, options, probe, whole.result.parameters_before);
  std::vector<std::string> names;
  for (const auto& [group, what] : cut.broken)
    names.push_back(graph.groups()[group].name);
  const bool reshape = error.find("is invalid for input of size") != std::string::npos;
  const std::string hint =
      reshape ? "a view or reshape after " + list_names(names) +
                    " probably has a fixed size; compute it from the tensor instead (e.g. "
                    "x.flatten(1) or x.view({x.size(0), -1}))"
              : "the forward probably assumes a fixed number of channels or features after " +
                    list_names(names);
  std::string detail;
  for (const auto& [group, what] : cut.broken)
    detail += "\n  " + what;
  if (cut.broken.empty()) {
    detail = "\n  (no single group: only the whole cut breaks it) " + error;
  }
  if (mode == ForwardCheck::kError || cut.broken.empty()) {
    snapshot.restore();
    graph = std::move(graph_before);
    flush_output();
    throw RuntimeError("demon::DemonPruner: prune event at step " + std::to_string(step) +
                       ": the cut model no longer runs its forward; " + hint +
                       ". Model, optimizer and pruner are as before the event." + detail);
  }
  cut.warning = "prune event at step " + std::to_string(step) + ": cutting " + list_names(names) +
                " broke the model's forward, so " + (names.size() == 1 ? "it stays" : "they stay") +
                " at full width; " + hint + "." + detail;
  return cut;
}

torch::Tensor probe_batch(const torch::Tensor& batch) {
  return batch.slice(0, 0, std::min<int64_t>(2, batch.size(0))).detach().clone();
}

torch::Tensor probe_input_from(const torch::Tensor& root) {
  torch::NoGradGuard no_grad;
  for (const auto& node : nodes_in_forward_order(root.grad_fn())) {
    const torch::Tensor input = saved_data_input(*node);
    if (input.defined() && input.size(0) > 0)
      return probe_batch(input);
  }
  return {};
}

void pin_named_groups(DependencyGraph& graph, const std::map<std::string, std::string>& reasons) {
  for (const auto& group : graph.groups()) {
    const auto found = reasons.find(group.name);
    if (found == reasons.end())
      continue;
    for (int64_t u : group.units)
      graph.pin(u, found->second);
  }
}

}  // namespace demon::detail
