#include "detail/channel_reduction.h"

#include <vector>

namespace demon::detail {

torch::Tensor reduce_to_channels(const torch::Tensor& x, int64_t dim, bool largest) {
  const int64_t channels = x.size(dim);
  if (x.device().is_cpu() && x.dim() == 4 && dim == 1 && channels % 32 != 0 && x.numel() > 0 &&
      x.is_contiguous(torch::MemoryFormat::ChannelsLast) && !x.is_contiguous()) {
    const torch::Tensor rows = x.movedim(1, -1).reshape({x.size(0) * x.size(2), -1});
    const torch::Tensor partial = largest ? rows.amax(0) : rows.amin(0);
    const torch::Tensor columns = partial.view({x.size(3), channels});
    return largest ? columns.amax(0) : columns.amin(0);
  }
  std::vector<int64_t> trailing, leading;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d > dim)
      trailing.push_back(d);
    if (d < dim)
      leading.push_back(d);
  }
  torch::Tensor result = x;
  if (!trailing.empty())
    result = largest ? result.amax(trailing) : result.amin(trailing);
  if (!leading.empty())
    result = largest ? result.amax(leading) : result.amin(leading);
  return result;
}

}  // namespace demon::detail
