#pragma once

// A CIFAR-shaped stand-in, for machines without the data: 10 classes, each a fixed smooth colour
// pattern (the same for the training and test sets), seen at a random shift, brightness and under
// pixel noise. Learnable, but not in one step.

#include <cstdint>

#include "cifar10.h"

namespace resnet18_cifar10 {

/// `count` images; `split` 0 for training, 1 for test (other samples, same classes).
Dataset make_synthetic_cifar10(int64_t count, uint64_t seed, int split);

}  // namespace resnet18_cifar10
