#pragma once
// The forward check of a prune event: the model runs on a two-sample probe before and after a
// cut, and a cut that breaks the forward (a reshape with a fixed size after a layer that shrank)
// is undone, then narrowed down to the channel groups whose own cut breaks it.

#include <torch/torch.h>

#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "demon/graph.h"
#include "demon/model_ref.h"
#include "demon/options.h"
#include "demon/surgery.h"

namespace demon::detail {

/// Runs `forward` on `input` (moved to the model's device and dtype) in eval mode, so that no
/// running statistic changes and no dropout fires, without gradients. Empty when it ran (then
/// `output`, if given, holds the output as double), else the error's first line.
std::string run_probe(torch::nn::Module& model, const Forward& forward, const torch::Tensor& input,
                      torch::Tensor* output = nullptr);

/// Why a probe cannot check cuts of `model` (no forward, no input, or an input that does not run
/// through the uncut model), as a warning for the user; empty when it can.
std::string probe_problem(torch::nn::Module& model, const Forward& forward,
                          const torch::Tensor& input);

/// What a checked cut did.
struct CheckedCut {
  PruneResult result;
  /// Largest |output difference| on the probe, before against after the cut; NaN when the cut
  /// broke the forward and was narrowed down.
  double output_change = std::numeric_limits<double>::quiet_NaN();
  /// The groups whose own cut broke the forward, left uncut: index, and "name (w -> w'): error".
  std::vector<std::pair<int, std::string>> broken;
  /// With `broken`: the warning that says which groups stay at full width, and why.
  std::string warning;
};

/// The probe of the model as it is now: empty when it ran (its output in the argument, if not
/// null), else the error.
using Probe = std::function<std::string(torch::Tensor*)>;

/// Cuts `dead` out of the graph's model and `optimizer`'s state with `options`, running `probe`
/// before and after. When the whole cut breaks the forward, it is undone and each group's share
/// is cut alone; the groups whose share breaks it stay uncut and are returned in `broken`. With
/// `mode` ForwardCheck::kError, or when no single group breaks it, everything is restored and a
/// RuntimeError names the prune event's `step`, the groups and the likely cause.
CheckedCut checked_cut(DependencyGraph& graph, const std::vector<int64_t>& dead,
                       torch::nn::Module& model, torch::optim::Optimizer* optimizer,
                       const PruneOptions& options, const Probe& probe, ForwardCheck mode,
                       int64_t step);

/// The first two samples of `batch`, detached and copied: the probe the forward check runs.
torch::Tensor probe_batch(const torch::Tensor& batch);

/// The network's input as the autograd graph of `root` saved it (the first layer's input, or
/// what the forward made of it), as a probe batch; undefined when no node saved one.
torch::Tensor probe_input_from(const torch::Tensor& root);

/// Pins every unit of the groups of `graph` that `reasons` names (group name → reason): the
/// groups the forward check pinned in an earlier structure, or in a checkpointed run.
void pin_named_groups(DependencyGraph& graph, const std::map<std::string, std::string>& reasons);

}  // namespace demon::detail
