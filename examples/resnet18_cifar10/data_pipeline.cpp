#include "data_pipeline.h"

#include <stdexcept>

namespace resnet18_cifar10 {

const float kCifarMean[3] = {0.4914f, 0.4822f, 0.4465f};
const float kCifarStd[3] = {0.2023f, 0.1994f, 0.2010f};

torch::Tensor normalize(const torch::Tensor& uint8_images) {
  const auto options = torch::TensorOptions(uint8_images.device()).dtype(torch::kFloat);
  const auto mean =
      torch::tensor({kCifarMean[0], kCifarMean[1], kCifarMean[2]}, options).view({1, 3, 1, 1});
  const auto std =
      torch::tensor({kCifarStd[0], kCifarStd[1], kCifarStd[2]}, options).view({1, 3, 1, 1});
  return (uint8_images.to(torch::kFloat).div_(255.0) - mean) / std;
}

torch::Tensor augment(const torch::Tensor& images, torch::Generator& generator) {
  const int64_t n = images.size(0);
  const auto device = images.device();
  // Per image: offsets in [0, 8] and a flip bit, drawn on the host (3 small integers each).
  auto draws = torch::randint(0, 9, {n, 2}, generator, torch::kLong);
  auto flips = torch::randint(0, 2, {n}, generator, torch::kLong).to(torch::kBool);
  draws = draws.to(device);
  flips = flips.to(device);
  const auto padded = torch::reflection_pad2d(images, {4, 4, 4, 4});  // [N, 3, 40, 40]
  const auto base = torch::arange(32, torch::TensorOptions(device).dtype(torch::kLong));
  const auto rows = draws.select(1, 0).unsqueeze(1) + base.unsqueeze(0);          // [N, 32]
  const auto forward_cols = draws.select(1, 1).unsqueeze(1) + base.unsqueeze(0);  // [N, 32]
  const auto cols = torch::where(flips.unsqueeze(1), forward_cols.flip({1}), forward_cols);
  auto out = padded.gather(2, rows.view({n, 1, 32, 1}).expand({n, 3, 32, 40}));
  return out.gather(3, cols.view({n, 1, 1, 32}).expand({n, 3, 32, 32}));
}

DevicePipeline::DevicePipeline(const Dataset& data, torch::Device device, int64_t batch_size,
                               bool shuffle, bool augment_images, uint64_t seed)
    : images_(data.images.to(device)),
      labels_(data.labels.to(device)),
      device_(device),
      batch_size_(batch_size),
      shuffle_(shuffle),
      augment_(augment_images),
      seed_(seed) {
  if (batch_size < 1) {
    throw std::invalid_argument("DevicePipeline: batch_size must be >= 1");
  }
  if (data.size() < batch_size && shuffle) {
    throw std::invalid_argument("DevicePipeline: fewer images (" + std::to_string(data.size()) +
                                ") than one batch (" + std::to_string(batch_size) + ")");
  }
}

int64_t DevicePipeline::batches() const {
  const int64_t n = labels_.size(0);
  return shuffle_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

void DevicePipeline::shard(int rank, int world_size) {
  if (world_size < 1 || rank < 0 || rank >= world_size || world_size > batch_size_) {
    throw std::invalid_argument("DevicePipeline::shard: rank " + std::to_string(rank) + " of " +
                                std::to_string(world_size) + " ranks, batch size " +
                                std::to_string(batch_size_) +
                                " (needs 0 <= rank < ranks <= batch size)");
  }
  rank_ = rank;
  world_size_ = world_size;
}

std::pair<torch::Tensor, torch::Tensor> DevicePipeline::batch(int64_t epoch, int64_t index) {
  torch::NoGradGuard no_grad;
  const int64_t n = labels_.size(0);
  const int64_t start = index * batch_size_;
  const int64_t end = std::min(n, start + batch_size_);
  torch::Tensor indices;
  if (shuffle_) {
    if (order_epoch_ != epoch) {
      auto generator = torch::make_generator<torch::CPUGeneratorImpl>(seed_ * 1000003ULL + epoch);
      order_ = torch::randperm(n, generator, torch::kLong).to(device_);
      order_epoch_ = epoch;
    }
    indices = order_.slice(0, start, end);
  } else {
    indices = torch::arange(start, end, torch::TensorOptions(device_).dtype(torch::kLong));
  }
  if (world_size_ > 1)
    indices = indices.tensor_split(world_size_)[static_cast<size_t>(rank_)];
  auto images = normalize(images_.index_select(0, indices));
  if (augment_) {
    // Each rank draws its own crops and flips (rank 0's draws are those of a single process).
    auto generator = torch::make_generator<torch::CPUGeneratorImpl>(
        (seed_ * 1000003ULL + epoch) * 100003ULL + index + 1 + 7919ULL * rank_);
    images = augment(images, generator);
  }
  return {images, labels_.index_select(0, indices)};
}

torch::Tensor DevicePipeline::head(int64_t count) const {
  return normalize(images_.slice(0, 0, std::min<int64_t>(count, labels_.size(0))));
}

}  // namespace resnet18_cifar10
