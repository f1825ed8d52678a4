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

std::vector<ReshapedAxis> reshape_candidates(const Shape& in, int64_t dim, const Shape& out) {
  std::vector<ReshapedAxis> found;
  std::vector<ReshapedAxis> changed;  // flattened or split: after every unchanged candidate
  if (dim < 0 || dim >= static_cast<int64_t>(in.size())) {
    return found;
  }
  const size_t d = static_cast<size_t>(dim);
  const int64_t before = product(in, 0, d);
  const int64_t c = in[d];
  for (size_t k = 0; k < out.size(); ++k) {
    // The output axis must start where the channel axis starts in row-major order.
    if (product(out, 0, k) != before || out[k] <= 0 || c <= 0) {
      continue;
    }
    const auto at = static_cast<int64_t>(k);
    if (out[k] == c) {
      found.push_back({at, 1, 1});
    } else if (out[k] > c && out[k] % c == 0) {
      // Merged with following dims: they must be whole dims of the input.
      const int64_t m = out[k] / c;
      for (size_t e = d + 1; e <= in.size(); ++e) {
        if (product(in, d + 1, e) == m) {
          changed.push_back({at, m, 1});
          break;
        }
      }
    } else if (out[k] < c && c % out[k] == 0) {
      // Split: the inner part must be whole dims of the output.
      const int64_t m = c / out[k];
      for (size_t e = k + 1; e <= out.size(); ++e) {
        if (product(out, k + 1, e) == m) {
          changed.push_back({at, 1, m});
          break;
        }
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
