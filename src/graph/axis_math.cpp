#include "graph/axis_math.h"

#include <sstream>
#include <stdexcept>

#include "demon/errors.h"

namespace demon::detail {

int64_t product(const Shape& shape, size_t begin, size_t end) {
  int64_t p = 1;
  for (size_t i = begin; i < end && i < shape.size(); ++i) {
    p *= shape[i];
  }
  return p;
}

std::string shape_string(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    out << (i ? ", " : "") << shape[i];
  }
  out << "]";
  return out.str();
}

namespace {

// The first `end` with product(shape, begin, end) == size, searching from `begin`; -1 if none.
int64_t whole_dims_after(const Shape& shape, size_t begin, int64_t size) {
  for (size_t end = begin; end <= shape.size(); ++end) {
    if (product(shape, begin, end) == size) {
      return static_cast<int64_t>(end);
    }
  }
  return -1;
}

// Whether `size` is the product of the dims of `shape` right before `end` (1: none of them).
bool whole_dims_before(const Shape& shape, size_t end, int64_t size) {
  for (size_t begin = end + 1; begin-- > 0;) {
    if (product(shape, begin, end) == size) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::vector<ReshapedAxis> reshape_candidates(const Shape& in, int64_t dim, const Shape& out) {
  std::vector<ReshapedAxis> found;
  std::vector<ReshapedAxis> changed;  // merged or split: after every unchanged candidate
  if (dim < 0 || dim >= static_cast<int64_t>(in.size())) {
    return found;
  }
  const size_t d = static_cast<size_t>(dim);
  const int64_t before = product(in, 0, d);
  const int64_t c = in[d];
  if (c <= 0) {
    return found;
  }
  for (size_t k = 0; k < out.size(); ++k) {
    const auto at = static_cast<int64_t>(k);
    const int64_t outer = product(out, 0, k);
    if (out[k] <= 0 || outer <= 0) {
      continue;
    }
    // Merged: output axis k spans whole input dims, `tile` of them before the channel axis and
    // `repeat` after it.
    if (before % outer == 0 && out[k] % c == 0) {
      const int64_t tile = before / outer;
      const int64_t inner = out[k] / c;
      if (inner % tile == 0 && whole_dims_before(in, d, tile) &&
          whole_dims_after(in, d + 1, inner / tile) >= 0) {
        const ReshapedAxis mapped{at, inner / tile, 1, tile};
        (mapped == ReshapedAxis{at} ? found : changed).push_back(mapped);
        continue;
      }
    }
    // Split: the channel axis spans whole output dims starting where it starts; axis k is one
    // of them, `tile` indices of the dims before it and `fold` of those after.
    if (c % out[k] == 0) {
      for (size_t s = 0; s <= k; ++s) {
        if (product(out, 0, s) != before) {
          continue;
        }
        const int64_t tile = product(out, s, k);
        if (c % (tile * out[k]) == 0 && whole_dims_after(out, k + 1, c / (tile * out[k])) >= 0) {
          changed.push_back({at, 1, c / (tile * out[k]), tile});
        }
        break;
      }
    }
  }
  found.insert(found.end(), changed.begin(), changed.end());
  return found;
}

std::optional<int64_t> axis_after_reduction(int64_t rank, int64_t dim,
                                            const std::vector<int64_t>& reduced, bool keepdim) {
  std::set<int64_t> removed;
  for (int64_t r : reduced) {
    const int64_t normalized = r < 0 ? r + rank : r;
    if (normalized < 0 || normalized >= rank) {
      throw IndexError("demon: reduction dim " + std::to_string(r) + " out of range for " +
                       std::to_string(rank) + " dims");
    }
    removed.insert(normalized);
  }
  if (removed.count(dim)) {
    return std::nullopt;
  }
  int64_t position = dim;
  if (!keepdim) {
    for (int64_t r : removed) {
      position -= r < dim ? 1 : 0;
    }
  }
  return position;
}

std::set<int64_t> axis_positions_after_reduction(const Shape& in, int64_t dim, const Shape& out) {
  std::set<int64_t> positions;
  const int64_t c = in.at(dim);
  if (out.size() == in.size()) {
    positions.insert(out[dim] == c ? dim : -1);
  } else if (out.size() < in.size() && in.size() < 32) {
    // Every set of removed dims whose removal leaves exactly `out`.
    const size_t n = in.size();
    for (uint32_t mask = 0; mask < (1u << n); ++mask) {
      if (static_cast<size_t>(__builtin_popcount(mask)) != n - out.size()) {
        continue;
      }
      Shape kept;
      int64_t position = -1;
      for (size_t i = 0; i < n; ++i) {
        if (!(mask & (1u << i))) {
          if (static_cast<int64_t>(i) == dim) {
            position = static_cast<int64_t>(kept.size());
          }
          kept.push_back(in[i]);
        }
      }
      if (kept == out) {
        positions.insert(position);
      }
    }
  }
  return positions;
}

int64_t broadcast_dim(int64_t dim, int64_t from_rank, int64_t to_rank) {
  return dim + to_rank - from_rank;
}

int64_t cat_dim(const std::vector<std::optional<Shape>>& inputs, const Shape& out) {
  int64_t found = -1;
  for (const auto& shape : inputs) {
    if (!shape || shape->size() != out.size()) {
      continue;
    }
    for (size_t k = 0; k < out.size(); ++k) {
      if ((*shape)[k] != out[k]) {
        found = static_cast<int64_t>(k);
      }
    }
  }
  return found;
}

int64_t axis_after_permutation(const std::vector<int64_t>& perm, int64_t dim) {
  for (size_t k = 0; k < perm.size(); ++k) {
    if (perm[k] == dim) {
      return static_cast<int64_t>(k);
    }
  }
  return -1;
}

}  // namespace demon::detail
