#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <ostream>
#include <vector>

namespace demon {

/// A fixed 0/1 map from input channels to output channels (dim 1), for residual shortcuts.
///
/// With a bare `out + x` a residual add couples the channels of both operands, so a whole stage
/// of residual channels can only be pruned together. Writing the identity shortcut as
/// `out + selection(x)` instead lets the engine prune each block's outputs independently, as the
/// DemP reference code does with its identity 1×1 convolution: removing a dead *input* channel
/// drops its entry (the output it fed gets zero from the shortcut, which is what a dead channel
/// contributed), removing an *output* channel drops the entries that write to it.
///
/// Starts as the identity on `num_channels` channels. Costs one index_select (plus one index_copy
/// once inputs have been removed); holds no parameters.
class ChannelSelectionImpl : public torch::nn::Cloneable<ChannelSelectionImpl> {
 public:
  explicit ChannelSelectionImpl(int64_t num_channels);

  void reset() override;
  torch::Tensor forward(const torch::Tensor& input);
  void pretty_print(std::ostream& stream) const override;

  int64_t in_channels() const noexcept { return in_channels_; }
  int64_t out_channels() const noexcept { return out_channels_; }

  /// Keeps the listed input and output channels (indices into the current ones, ascending).
  void select(const std::vector<int64_t>& keep_inputs, const std::vector<int64_t>& keep_outputs);

  /// Re-reads in/out channel counts from the `channels` buffer (after loading a checkpoint).
  void sync_from_buffers();

  /// Entry k copies input channel source[k] to output channel target[k].
  torch::Tensor source;
  torch::Tensor target;
  /// {in_channels, out_channels}, a buffer so that checkpoints carry the shape.
  torch::Tensor channels;

 private:
  void refresh_cache();
  int64_t initial_channels_;
  int64_t in_channels_ = 0;
  int64_t out_channels_ = 0;
  bool dense_ = true;  // target == 0..out-1: a single index_select suffices
};

TORCH_MODULE(ChannelSelection);

}  // namespace demon
