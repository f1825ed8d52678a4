#pragma once

// A small training setup for end-to-end tests: ResNet-18 (CIFAR) at width 1/8 on 16×16
// synthetic images of 4 learnable classes, one deterministic batch per step.

#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
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

// DEMON_TEST_SEED, to check a test's margin across initializations.
inline uint64_t seed_from_env() {
  const char* seed = std::getenv("DEMON_TEST_SEED");
  return seed ? std::strtoull(seed, nullptr, 10) : 0;
}

// Trains steps [0, steps) at the optimizer's lr, the last 50 at a tenth of it. Eval-mode accuracy
// at a constant lr of 1e-2 swings between neighbouring steps (BN's running statistics chase the
// weights), on some LibTorch versions from 1.0 to 0.75; annealing, as real training does, makes
// the final accuracy a property of the run rather than of its last step.
template <typename Options>
void train_then_anneal(DemonPruner& pruner, resnet18_cifar10::ResNet18& model,
                       torch::optim::Optimizer& optimizer, int64_t steps) {
  const int64_t anneal = std::min<int64_t>(50, steps / 2);
  train(pruner, model, 0, steps - anneal);
  for (auto& group : optimizer.param_groups()) {
    auto& options = static_cast<Options&>(group.options());
    options.lr(options.lr() * 0.1);
  }
  train(pruner, model, steps - anneal, steps);
}

// Accuracy of `model` on fresh synthetic batches of 64, normalized by their own statistics: BN's
// running statistics trail the weights by ~10 steps, and with large learning rates eval-mode
// accuracy swings between neighbouring steps (1.0 to 0.75 on this task) on some LibTorch versions.
inline double accuracy(resnet18_cifar10::ResNet18& model) {
  torch::NoGradGuard no_grad;
  int64_t correct = 0, seen = 0;
  for (int64_t b = 0; b < 4; ++b) {
    auto [images, labels] = synthetic_batch(10000 + b, 64);
    correct += model->forward(images).argmax(1).eq(labels).sum().item<int64_t>();
    seen += 64;
  }
  return static_cast<double>(correct) / static_cast<double>(seen);
}

}  // namespace demon::testing
