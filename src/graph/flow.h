#pragma once

// What flows along one autograd edge, as far as channels are concerned. Torch-free.

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace demon::detail {

using Shape = std::vector<int64_t>;

struct ChannelFlow {
  enum class Kind {
    kExternal,       // no gradient: input data or a constant (shape unknown)
    kData,           // derived from the data
    kParam,          // a parameter of the model (tensor)
    kParamFunction,  // computed from parameters only
  };
  Kind kind = Kind::kExternal;
  std::optional<Shape> shape;
  int64_t dim = -1;                   // the tracked channel axis (kData); -1: not tracked
  std::vector<int64_t> channels;      // channel id per index along dim
  std::vector<int32_t> zero_sources;  // ZeroSources set per index (0: none)
  int tensor = -1;                    // kParam: the parameter's index in the model
  bool transposed = false;            // kParam seen through t()

  bool tracked() const { return kind == Kind::kData && dim >= 0; }
  bool is_data() const { return kind == Kind::kData; }
  bool is_param() const { return kind == Kind::kParam; }
  int64_t rank() const { return shape ? static_cast<int64_t>(shape->size()) : -1; }
  int64_t width() const { return static_cast<int64_t>(channels.size()); }

  /// Data whose axis `dim` carries `channels` (zero sources default to none).
  static ChannelFlow tracked(Shape shape, int64_t dim, std::vector<int64_t> channels,
                             std::vector<int32_t> zero_sources = {}) {
    ChannelFlow flow;
    flow.kind = Kind::kData;
    flow.shape = std::move(shape);
    flow.dim = dim;
    flow.channels = std::move(channels);
    flow.zero_sources = std::move(zero_sources);
    if (flow.zero_sources.size() != flow.channels.size()) {
      flow.zero_sources.assign(flow.channels.size(), 0);
    }
    return flow;
  }
  /// Data with no channel axis the walker follows.
  static ChannelFlow opaque(std::optional<Shape> shape) {
    ChannelFlow flow;
    flow.kind = Kind::kData;
    flow.shape = std::move(shape);
    return flow;
  }
};

}  // namespace demon::detail
