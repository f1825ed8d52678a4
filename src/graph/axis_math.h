#pragma once

// Where a tracked channel axis goes through a shape-changing op: pure arithmetic over shapes,
// shared by the shape rules and tested on its own. Torch-free.

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace demon::detail {

using Shape = std::vector<int64_t>;

/// The product of shape[begin, end) (1 if empty; indices past the end are ignored).
int64_t product(const Shape& shape, size_t begin, size_t end);
/// "[2, 3, 4]".
std::string shape_string(const Shape& shape);

/// How a row-major reshape carries a channel axis of width c to output axis `dim`: each channel
/// unchanged (repeat = fold = tile = 1), merged with the dims after it (flatten: each channel
/// spans `repeat` consecutive indices), split back (unflatten: `fold` consecutive indices of the
/// input become one, which is only one channel if those indices are), and merged with (or split
/// from) the dims before it: the whole run of channels appears `tile` times along the axis
/// (LibTorch's InstanceNorm views [N, C, ...] as [1, N·C, ...] and back).
struct ReshapedAxis {
  int64_t dim = -1;
  int64_t repeat = 1;
  int64_t fold = 1;
  int64_t tile = 1;
  bool operator==(const ReshapedAxis& other) const {
    return dim == other.dim && repeat == other.repeat && fold == other.fold && tile == other.tile;
  }
};

/// The ways `in` → `out` can carry axis `dim` of `in`: the axis unchanged first, then merged or
/// split, each in output order; empty if the reshape mixes the axis with others. A caller takes
/// the first it can use (a fold needs uniform blocks). [2, 8] → [2, 1, 8] gives {2} before the
/// fold {1, fold 8}: a size-1 dim in front is not where the channels went.
std::vector<ReshapedAxis> reshape_candidates(const Shape& in, int64_t dim, const Shape& out);

/// Where axis `dim` of a rank-`rank` input is after removing `reduced` (as the op was called:
/// negative dims count from the end; keepdim leaves them as size 1); nullopt if `dim` itself is
/// removed. Out-of-range dims throw IndexError.
std::optional<int64_t> axis_after_reduction(int64_t rank, int64_t dim,
                                            const std::vector<int64_t>& reduced, bool keepdim);

/// Where axis `dim` of `in` can be in `out` when `out` is `in` with some dims removed (or with
/// the same rank: a slice or a keepdim reduction), judged from the sizes only. Each position
/// whose removal set fits; -1 for "removed". More than one element means ambiguous; none means
/// `out` is not such a result.
std::set<int64_t> axis_positions_after_reduction(const Shape& in, int64_t dim, const Shape& out);

/// Axis `dim` of a rank-`from_rank` operand, right-aligned against rank `to_rank` (broadcasting);
/// negative when it falls off the front.
int64_t broadcast_dim(int64_t dim, int64_t from_rank, int64_t to_rank);

/// The dim along which inputs of known shape were concatenated into `out`: the last dim where
/// one of them (of the output's rank) differs from it; -1 if none does.
int64_t cat_dim(const std::vector<std::optional<Shape>>& inputs, const Shape& out);

/// Where input axis `dim` is after a permutation (output k = input perm[k]); -1 if absent.
int64_t axis_after_permutation(const std::vector<int64_t>& perm, int64_t dim);

}  // namespace demon::detail
