#pragma once

#include <torch/nn/module.h>

namespace demon::detail {

/// Rewrites a module's options from its tensors' current shapes (Conv1d/2d/3d channels and
/// groups, Linear features, BatchNorm1d/2d/3d and GroupNorm features; ChannelSelection re-reads
/// its buffers). Other modules are left alone. Called after surgery and after loading a
/// checkpoint, so that modules print, clone and serialize their real shape.
void sync_module_options(torch::nn::Module& module);

}  // namespace demon::detail
