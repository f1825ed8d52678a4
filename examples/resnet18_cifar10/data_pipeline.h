#pragma once

// The input pipeline, on the training device: the whole dataset lives there as uint8 (150 MB for
// CIFAR-10); shuffling, reflection-pad-4 random crops, horizontal flips and normalization run
// there, batched. The host only draws a permutation per epoch and a few random integers per
// batch, from generators seeded by (seed, epoch, batch): every batch is reproducible, which is
// what makes --resume exact.

#include <torch/torch.h>

#include <cstdint>
#include <utility>

#include "cifar10.h"

namespace resnet18_cifar10 {

/// Per-channel mean and standard deviation of CIFAR-10's training images.
extern const float kCifarMean[3];
extern const float kCifarStd[3];

/// Normalized float images from uint8 ones, on their device.
torch::Tensor normalize(const torch::Tensor& uint8_images);

/// Pads by 4 (reflection), crops 32×32 at a random offset and flips half of the images, per
/// image, in one batched gather; offsets and flips drawn from `generator`.
torch::Tensor augment(const torch::Tensor& float_images, torch::Generator& generator);

class DevicePipeline {
 public:
  DevicePipeline(const Dataset& data, torch::Device device, int64_t batch_size, bool shuffle,
                 bool augment, uint64_t seed);

  /// Full batches per epoch (a last partial batch is dropped when shuffling, as in training).
  int64_t batches() const;
  int64_t size() const { return labels_.size(0); }
  /// Data parallel: batch() gives rank `rank`'s share of each batch of batch_size images (split
  /// as evenly as tensor_split does), and augments only that share.
  void shard(int rank, int world_size);
  /// Batch `index` of `epoch`: normalized (and augmented) float images, and labels, on device.
  std::pair<torch::Tensor, torch::Tensor> batch(int64_t epoch, int64_t index);
  /// The first `count` images of the (unshuffled) set, normalized, not augmented.
  torch::Tensor head(int64_t count) const;

 private:
  torch::Tensor images_;  // uint8 [N, 3, 32, 32] on device
  torch::Tensor labels_;  // int64 [N] on device
  torch::Device device_;
  int64_t batch_size_;
  bool shuffle_;
  bool augment_;
  uint64_t seed_;
  int rank_ = 0;
  int world_size_ = 1;
  int64_t order_epoch_ = -1;
  torch::Tensor order_;  // this epoch's permutation, on device
};

}  // namespace resnet18_cifar10
