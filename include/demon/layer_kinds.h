#pragma once

#include <string>

namespace demon {

/// Activations whose outputs the engine reads to find dead units.
enum class ActivationKind { kRelu, kLeakyRelu, kGelu, kSilu, kSigmoid, kTanh, kHardtanh };
std::string to_string(ActivationKind kind);

/// Layers whose shapes the engine changes; their module options follow the new shapes.
enum class LayerKind {
  kConv,
  kLinear,
  kBatchNorm,
  kGroupNorm,
  kLayerNorm,
  kChannelSelection,
  kPReLU,
  kInstanceNorm,
};
std::string to_string(LayerKind kind);

}  // namespace demon
