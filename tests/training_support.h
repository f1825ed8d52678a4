#pragma once

// A small training setup for end-to-end tests: ResNet-18 (CIFAR) at width 1/8 on 16×16
// synthetic images of 4 learnable classes, one deterministic batch per step.

#include <torch/torch.h>

#include <memory>

#include "demon/pruner.h"
#include "resnet.h"

namespace demon::testing {

inline resnet18_cifar10::ResNet18 small_resnet(uint64_t seed = 0) {
  torch::manual_seed(seed);
  return resnet18_cifar10::ResNet18(resnet18_cifar10::ResNetOptions().width(0.125).num_classes(4));
}

/// Batch number `index`: class k brightens channel k % 3 (and the left half for k >= 3).
inline std::pair<torch::Tensor, torch::Tensor> synthetic_batch(int64_t index, int64_t size = 32) {
  auto generator = torch::make_generator<torch::CPUGeneratorImpl>(1000 + index);
  auto labels = torch::randint(0, 4, {size}, generator, torch::kLong);
  auto images = torch::randn({size, 3, 16, 16}, generator) * 0.5;
  auto onehot = torch::one_hot(labels, 4).to(images.scalar_type());
  images.select(1, 0) +=
      onehot.select(1, 0).view({size, 1, 1}) + onehot.select(1, 3).view({size, 1, 1});
  images.select(1, 1) += onehot.select(1, 1).view({size, 1, 1});
  images.select(1, 2) += onehot.select(1, 2).view({size, 1, 1});
  images.slice(3, 0, 8) += onehot.select(1, 3).view({size, 1, 1, 1});
  return {images, labels};
}

/// Runs steps [from, to) through the pruner; returns the mean loss of each step.
inline std::vector<double> train(DemonPruner& pruner, resnet18_cifar10::ResNet18& model,
                                 int64_t from, int64_t to) {
  std::vector<double> losses;
  for (int64_t step = from; step < to; ++step) {
    auto [images, labels] = synthetic_batch(step);
    pruner.zero_grad();
    auto loss = torch::cross_entropy_loss(model->forward(images), labels);
    losses.push_back(loss.item<double>());
    pruner.backward(loss);
    pruner.step();
  }
  return losses;
}

}  // namespace demon::testing
