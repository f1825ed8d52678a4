#pragma once

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "demon/options.h"

namespace demon {

/// DemP's asymmetric noise: after the optimizer step, σ(t)·N(0, 1) is added to every weight of a
/// live unit — in practice every element whose loss gradient this step was non-zero (dead units
/// get exactly zero gradient, so they get no noise and stay dead). Not scaled by the learning
/// rate. The noise comes from a generator per device, seeded with `seed`, so a run is
/// reproducible.
///
/// Use per step: capture_live_mask() after backward and *before* anything else touches the
/// gradients (the regularizer's term is non-zero on a dead unit's γ, and noise there could
/// revive it), then apply(σ) after the optimizer step.
class AsymmetricNoise {
 public:
  AsymmetricNoise(std::vector<torch::Tensor> params, NoiseMode mode, uint64_t seed);

  /// Records which elements currently have a non-zero gradient (kLiveOnly); no-op for kAll.
  void capture_live_mask();
  /// Adds sigma·N(0,1) to the live elements recorded by capture_live_mask() (kLiveOnly), or to
  /// every element (kAll). Clears the recorded mask. No-op (and no random draw) for sigma == 0.
  void apply(double sigma);

  NoiseMode mode() const noexcept { return mode_; }
  const std::vector<torch::Tensor>& params() const noexcept { return params_; }

  /// Generator state per device, for checkpoints.
  std::map<std::string, torch::Tensor> generator_states() const;
  /// Replaces every generator with `states` (devices not named start afresh from the seed). All or
  /// nothing: a bad device name or state throws and changes nothing.
  void set_generator_states(const std::map<std::string, torch::Tensor>& states);

 private:
  // Parameters of one device and dtype, noised with one draw and one foreach add.
  struct Bucket {
    std::vector<torch::Tensor> params;
    torch::Tensor live;  // bool, all params' elements concatenated; undefined until captured
  };
  at::Generator fresh_generator(const torch::Device& device) const;
  at::Generator& generator_for(const torch::Device& device);
  std::vector<Bucket> make_buckets() const;

  std::vector<torch::Tensor> params_;
  NoiseMode mode_;
  uint64_t seed_;
  std::map<std::string, at::Generator> generators_;
  std::vector<Bucket> captured_;
};

}  // namespace demon
