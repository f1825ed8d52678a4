// Rules for ops that move, merge or drop axes: where the tracked channel axis goes. The
// arithmetic is in axis_math; these rules apply it to flows and say why when they cannot.

#include <stdexcept>

#include "detail/autograd_nodes.h"
#include "graph/axis_math.h"
#include "graph/rule_context.h"
#include "graph/rules/rules.h"

namespace demon::detail::rules {
namespace {

// Each channel of `in` spread over `repeat` consecutive indices (flatten, pixel_unshuffle), the
// whole run `tile` times over (the batch merged in front).
ChannelFlow repeated(const ChannelFlow& in, const Shape& shape, int64_t dim, int64_t repeat,
                     int64_t tile = 1) {
  std::vector<int64_t> channels;
  std::vector<int32_t> sources;
  for (int64_t t = 0; t < tile; ++t) {
    for (size_t i = 0; i < in.channels.size(); ++i) {
      channels.insert(channels.end(), repeat, in.channels[i]);
      sources.insert(sources.end(), repeat, in.zero_sources[i]);
    }
  }
  return ChannelFlow::tracked(shape, dim, channels, sources);
}

// Output index j of a split: the input indices ((t·width + j)·fold + r) for every tile t and
// r < fold, which must all be one channel (unflatten, pixel_shuffle, the batch split off again);
// nullopt otherwise. Zero where all of them are.
std::optional<ChannelFlow> folded(const ChannelFlow& in, const Shape& shape, int64_t dim,
                                  int64_t fold, int64_t tile, ZeroSources& zero_sources) {
  const int64_t width = in.width() / (fold * tile);
  std::vector<int64_t> channels;
  std::vector<int32_t> sources;
  for (int64_t j = 0; j < width; ++j) {
    const int64_t channel = in.channels[j * fold];
    int32_t zero = in.zero_sources[j * fold];
    for (int64_t t = 0; t < tile; ++t) {
      for (int64_t r = 0; r < fold; ++r) {
        const int64_t index = (t * width + j) * fold + r;
        if (in.channels[index] != channel) {
          return std::nullopt;
        }
        zero = zero_sources.both(zero, in.zero_sources[index]);
      }
    }
    channels.push_back(channel);
    sources.push_back(zero);
  }
  return ChannelFlow::tracked(shape, dim, channels, sources);
}

}  // namespace

// Pooling, upsampling, padding: per channel over the dims after it.
void spatial(RuleContext& context, OpCall& call) {
  const ChannelFlow& in = call.in.at(0);
  if (!in.tracked()) {
    return;
  }
  const auto& out = call.out[0].shape;
  if (in.dim != 1 || !out || static_cast<int64_t>(out->size()) != in.rank() ||
      (*out)[1] != in.width()) {
    context.give_up(call, call.op + " over the channel axis");
    return;
  }
  // Padding writes its fill value (not always zero) into the new positions.
  const bool zero_preserving = call.op.find("Pad") == std::string::npos;
  call.out[0] = ChannelFlow::tracked(*out, 1, in.channels,
                                     zero_preserving ? in.zero_sources : std::vector<int32_t>{});
}

// Row-major reshapes: the channel axis survives if its flat extent maps onto output dims.
void reshape(RuleContext& context, OpCall& call) {
  const ChannelFlow& in = call.in.at(0);
  if (!in.tracked()) {
    return;
  }
  const auto& out = call.out[0].shape;
  if (!out) {
    context.give_up(call, "reshape to an unknown shape");
    return;
  }
  const Shape o = *out;
  for (const auto& mapped : reshape_candidates(*in.shape, in.dim, o)) {
    // Merged (or unchanged) axes grow; split ones shrink.
    if (o[mapped.dim] >= in.width()) {
      call.out[0] = repeated(in, o, mapped.dim, mapped.repeat, mapped.tile);
      return;
    }
    if (auto flow = folded(in, o, mapped.dim, mapped.fold, mapped.tile, context.zero_sources())) {
      call.out[0] = std::move(*flow);
      return;
    }
  }
  context.give_up(call, "reshape that splits or mixes the channel axis " + shape_string(*in.shape) +
                            " -> " + shape_string(o));
}

// pixel_shuffle(r): [N, C·r², H, W] -> [N, C, H·r, W·r], output channel c made of input
// channels c·r² ... c·r² + r² - 1, which therefore go together; pixel_unshuffle the reverse.
void pixel_shuffle(RuleContext& context, OpCall& call) {
  const ChannelFlow& in = call.in.at(0);
  if (!in.tracked()) {
    return;
  }
  const auto& out = call.out[0].shape;
  if (in.dim != 1 || !out || static_cast<int64_t>(out->size()) != in.rank() || (*out)[1] <= 0) {
    context.give_up(call, call.op + " with its channels off dim 1");
    return;
  }
  const int64_t out_channels = (*out)[1];
  if (call.op == "PixelUnshuffle") {
    if (out_channels % in.width() != 0) {
      context.give_up(call, call.op + " with sizes that do not divide");
      return;
    }
    call.out[0] = repeated(in, *out, 1, out_channels / in.width());
    return;
  }
  if (in.width() % out_channels != 0) {
    context.give_up(call, call.op + " with sizes that do not divide");
    return;
  }
  const int64_t block = in.width() / out_channels;
  std::vector<int64_t> channels;
  std::vector<int32_t> sources;
  for (int64_t c = 0; c < out_channels; ++c) {
    int32_t zero = in.zero_sources[c * block];
    for (int64_t r = 1; r < block; ++r) {
      context.ids().unite(in.channels[c * block], in.channels[c * block + r]);
      zero = context.zero_sources().both(zero, in.zero_sources[c * block + r]);
    }
    channels.push_back(in.channels[c * block]);
    sources.push_back(zero);
  }
  call.out[0] = ChannelFlow::tracked(*out, 1, channels, sources);
}

void permute(RuleContext& context, OpCall& call) {
  const ChannelFlow& in = call.in.at(0);
  if (!in.tracked()) {
    return;
  }
  const auto& out = call.out[0].shape;
  std::vector<int64_t> candidates;
  const auto perm = permutation(call.node, in.rank());
  if (out && static_cast<int64_t>(out->size()) == in.rank() && perm) {
    // The node says where each dim went: no guessing from sizes.
    const int64_t k = axis_after_permutation(*perm, in.dim);
    if (k >= 0 && (*out)[k] == in.width()) {
      candidates.push_back(k);
    }
  } else if (out && static_cast<int64_t>(out->size()) == in.rank()) {
    if (call.op == "T" && in.rank() == 2) {
      candidates.push_back(1 - in.dim);
    } else {
      for (size_t k = 0; k < out->size(); ++k) {
        if ((*out)[k] == in.width()) {
          candidates.push_back(static_cast<int64_t>(k));
        }
      }
    }
  }
  if (candidates.size() != 1) {
    context.give_up(call, "permutation the engine cannot follow (equal dim sizes)");
    return;
  }
  call.out[0] = ChannelFlow::tracked(*out, candidates[0], in.channels, in.zero_sources);
}

// Reductions with dims, select, slice, split: the channel axis must come through unchanged.
// Where the node saved its reduced dims (mean, sum, amax, select) they say where it goes;
// otherwise it is inferred from the shapes, which equal sizes can make ambiguous.
void reduce_or_select(RuleContext& context, OpCall& call) {
  const ChannelFlow& in = call.in.at(0);
  if (!in.tracked()) {
    return;
  }
  const std::string& op = call.op;
  if (const auto reduced = reduced_dims(call.node)) {
    std::optional<int64_t> position;
    try {
      position = axis_after_reduction(in.rank(), in.dim, reduced->dims, reduced->keepdim);
    } catch (const std::out_of_range&) {
      context.give_up(call, op + " whose saved dims do not match its input");
      return;
    }
    if (!position) {
      context.give_up(call, op + " over the channel axis");
      return;
    }
    // Every output (unbind has one per index) lost the same dims.
    for (const auto& output : call.out) {
      const auto& o = output.shape;
      if (!o || *position >= static_cast<int64_t>(o->size()) || (*o)[*position] != in.width()) {
        context.give_up(call, op + " whose saved dims do not match its output");
        return;
      }
    }
    for (auto& output : call.out) {
      output = ChannelFlow::tracked(*output.shape, *position, in.channels, in.zero_sources);
    }
    return;
  }
  for (auto& output : call.out) {
    if (!output.shape) {
      context.give_up(call, op + " with an unknown output shape");
      return;
    }
    const auto positions = axis_positions_after_reduction(*in.shape, in.dim, *output.shape);
    if (positions.size() != 1 || *positions.begin() < 0) {
      context.give_up(
          call, positions.size() > 1 ? op + " with ambiguous dims" : op + " over the channel axis");
      return;
    }
    output = ChannelFlow::tracked(*output.shape, *positions.begin(), in.channels, in.zero_sources);
  }
}

void expand(RuleContext& context, OpCall& call) {
  const ChannelFlow& in = call.in.at(0);
  if (!in.tracked()) {
    return;
  }
  const auto& out = call.out[0].shape;
  const int64_t d = out ? broadcast_dim(in.dim, in.rank(), static_cast<int64_t>(out->size())) : -1;
  if (!out || d < 0 || (*out)[d] != in.width()) {
    context.give_up(call, "expand of the channel axis");
    return;
  }
  call.out[0] = ChannelFlow::tracked(*out, d, in.channels, in.zero_sources);
}

void cat(RuleContext& context, OpCall& call) {
  const auto& inputs = call.in;
  const auto& out = call.out[0].shape;
  const ChannelFlow* first = nullptr;
  for (const auto& v : inputs) {
    if (v.tracked()) {
      first = &v;
      break;
    }
  }
  if (!out || first == nullptr || first->rank() != static_cast<int64_t>(out->size())) {
    context.give_up(call, "concatenation the engine cannot follow");
    return;
  }
  const Shape o = *out;
  const int64_t c_dim = first->dim;
  if (inputs.size() == 1) {  // identity
    call.out[0] = *first;
    call.out[0].shape = o;
    return;
  }
  std::vector<std::optional<Shape>> shapes;
  for (const auto& v : inputs) {
    shapes.push_back(v.shape);
  }
  const int64_t along = cat_dim(shapes, o);
  if (along < 0) {
    context.give_up(call, "concatenation along an undeterminable dim");
    return;
  }
  const std::string lost = "concatenated with channels the engine cannot follow";
  if (along == c_dim) {
    // Channels side by side: each input keeps its own channels, at an offset.
    std::vector<int64_t> channels;
    std::vector<int32_t> sources;
    int64_t known = 0;
    int unknown_count = 0;
    for (const auto& v : inputs) {
      if (v.shape) {
        known += (*v.shape)[c_dim];
      } else {
        ++unknown_count;
      }
    }
    for (const auto& v : inputs) {
      if (v.tracked() && v.dim == c_dim) {
        channels.insert(channels.end(), v.channels.begin(), v.channels.end());
        sources.insert(sources.end(), v.zero_sources.begin(), v.zero_sources.end());
        continue;
      }
      context.pin(v, lost);
      const int64_t size =
          v.shape ? (*v.shape)[c_dim] : (unknown_count == 1 ? o[c_dim] - known : -1);
      if (size < 0) {
        context.give_up(call, "concatenation with an operand of unknown shape");
        return;
      }
      const auto pinned = context.ids().make_pinned(size, lost);
      channels.insert(channels.end(), pinned.begin(), pinned.end());
      sources.insert(sources.end(), size, 0);
    }
    if (static_cast<int64_t>(channels.size()) != o[c_dim]) {
      context.give_up(call, "concatenation whose sizes do not add up");
      return;
    }
    call.out[0] = ChannelFlow::tracked(o, c_dim, channels, sources);
    return;
  }
  // Along another dim: every input carries the same channels.
  std::vector<int32_t> sources = first->zero_sources;
  for (const auto& v : inputs) {
    if (v.tracked() && v.dim == c_dim && v.width() == first->width()) {
      context.ids().unite_all(first->channels, v.channels);
      for (size_t i = 0; i < sources.size(); ++i) {
        sources[i] = context.zero_sources().both(sources[i], v.zero_sources[i]);
      }
    } else {
      context.pin(v, lost);
      context.ids().pin_all(first->channels, lost);
    }
  }
  call.out[0] = ChannelFlow::tracked(o, c_dim, first->channels, sources);
}

}  // namespace demon::detail::rules
