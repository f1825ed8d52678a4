#include "synthetic_data.h"

namespace resnet18_cifar10 {

Dataset make_synthetic_cifar10(int64_t count, uint64_t seed, int split) {
  torch::NoGradGuard no_grad;
  // Class prototypes: a random 3×4×4 colour grid, smoothly upsampled to 32×32.
  auto prototypes_gen = torch::make_generator<torch::CPUGeneratorImpl>(seed * 2 + 7);
  auto grid = torch::rand({10, 3, 4, 4}, prototypes_gen) * 0.5 + 0.25;  // low contrast
  auto prototypes = torch::upsample_bilinear2d(grid, {32, 32}, /*align_corners=*/false);

  auto gen = torch::make_generator<torch::CPUGeneratorImpl>(seed * 2 + 11 + 1000003ULL * split);
  Dataset data;
  data.labels = torch::randint(0, 10, {count}, gen, torch::kLong);
  auto images = prototypes.index_select(0, data.labels);
  // Each image shifted by up to 6 pixels (with wrap-around), one row/column shift per image.
  const auto shifts = torch::randint(-6, 7, {count, 2}, gen, torch::kLong);
  const auto base = torch::arange(32, torch::kLong);
  const auto rows = (base.unsqueeze(0) - shifts.select(1, 0).unsqueeze(1)).remainder(32);  // [N,32]
  const auto cols = (base.unsqueeze(0) - shifts.select(1, 1).unsqueeze(1)).remainder(32);
  images = images.gather(2, rows.view({count, 1, 32, 1}).expand({count, 3, 32, 32}));
  images = images.gather(3, cols.view({count, 1, 1, 32}).expand({count, 3, 32, 32}));
  const auto brightness = torch::rand({count, 1, 1, 1}, gen) * 0.6 + 0.7;
  images = images * brightness + torch::randn({count, 3, 32, 32}, gen) * 0.35;
  data.images = (images.clamp(0.0, 1.0) * 255.0).round().to(torch::kUInt8);
  return data;
}

}  // namespace resnet18_cifar10
