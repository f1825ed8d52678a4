#pragma once

#include <c10/core/ScalarType.h>

namespace demon {

/// Turns CUDA autocast on (computing in `dtype`) or off for the current thread, on every LibTorch
/// version demon supports (the switch's API changed in 2.4). Turning it off also drops autocast's
/// cache of cast weights, which a prune event makes stale.
void set_cuda_autocast(bool enabled, c10::ScalarType dtype = c10::kBFloat16);

/// CUDA autocast on for as long as it lives, off again when it goes, even when the forward
/// inside throws:
///
///     {
///       demon::CudaAutocast autocast(torch::kBFloat16);
///       logits = model->forward(images);
///     }
class CudaAutocast {
 public:
  explicit CudaAutocast(c10::ScalarType dtype = c10::kBFloat16) { set_cuda_autocast(true, dtype); }
  ~CudaAutocast() { set_cuda_autocast(false); }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;
};

}  // namespace demon
