#pragma once

// Pruned models out of C++: the example's ResNet-18 under the parameter names a PyTorch module of
// the same structure has (tools/demon_to_pytorch.py is that module).

#include <demon/safetensors.h>

#include <string>

#include "resnet.h"

namespace resnet18_cifar10 {

/// "layer1_0.conv1.weight" -> "layer1.0.conv1.weight" (blocks as items of a Sequential per
/// stage); other names are unchanged.
std::string pytorch_name(const std::string& name);

/// Every parameter and buffer of `model` (BatchNorm statistics, ChannelSelection indices), in
/// model order, under pytorch_name().
demon::NamedTensors pytorch_state(ResNet18& model);

}  // namespace resnet18_cifar10
