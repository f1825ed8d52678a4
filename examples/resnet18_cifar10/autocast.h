#pragma once

// CUDA autocast switches: the one API that differs between LibTorch 1.13 and 2.x here.

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace resnet18_cifar10 {

/// Enables (or disables) CUDA autocast to `dtype` for the current thread.
inline void set_cuda_autocast(bool enabled, at::ScalarType dtype = at::kBFloat16) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
  at::autocast::set_autocast_enabled(at::kCUDA, enabled);
#else
  at::autocast::set_autocast_gpu_dtype(dtype);
  at::autocast::set_enabled(enabled);
#endif
  if (!enabled) {
    at::autocast::clear_cache();
  }
}

}  // namespace resnet18_cifar10
