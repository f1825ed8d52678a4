#include "demon/autocast.h"

#include "detail/torch_compat.h"

namespace demon {

void set_cuda_autocast(bool enabled, c10::ScalarType dtype) {
  detail::set_cuda_autocast(enabled, dtype);
}

}  // namespace demon
