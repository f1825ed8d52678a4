#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <nlohmann/json.hpp>

#include <string>

#include "demon/model_ref.h"

namespace demon {

class DemonPruner;

/// Writes a checkpoint of a (possibly pruned) model: every parameter and buffer with its name and
/// shape, and optionally the optimizer's state, the pruner's own state (step, noise generators,
/// activity since the last prune, initial summary) and any JSON of the caller's (epoch, data
/// order, metrics). The write is atomic: a temporary file next to `path` is renamed over it, so a
/// crash never leaves a broken file where a good one was. `model` and `optimizer` as the training
/// loop holds them (see ModelRef, OptimizerRef): `save_checkpoint(path, model, optimizer,
/// &pruner)` works for a holder or a module by value, a shared_ptr or a plain optimizer.
void save_checkpoint(const std::string& path, const ModelRef& model,
                     const OptimizerRef& optimizer = nullptr, const DemonPruner* pruner = nullptr,
                     const nlohmann::json& extra = nlohmann::json::object());

/// Loads a checkpoint into `model`, typically a freshly constructed dense model of the class that
/// was saved: each tensor is shrunk to the saved shape in place (set_data, so an optimizer built
/// on the model's parameters still holds them) and module options follow (channels, features,
/// groups), so the model prints, serializes and trains at its real size. Then the optimizer and
/// the pruner, if given, get their saved state. Returns the caller's JSON.
///
/// LibTorch's torch::load would silently adopt the saved shapes and leave module options stale;
/// this refuses instead: a checkpoint that does not fit the model (a tensor missing on either
/// side, another rank or dtype, a dimension larger than the model's) is a demon::ValueError
/// naming the first mismatch, and nothing is changed. The optimizer's and the pruner's sections
/// are read before the model is touched; should one of them fail (another optimizer type, other
/// DemonOptions), the model is left as it was.
nlohmann::json load_checkpoint(const std::string& path, const ModelRef& model,
                               const OptimizerRef& optimizer = nullptr,
                               DemonPruner* pruner = nullptr);

}  // namespace demon
