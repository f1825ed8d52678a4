// Rules for per-element ops: one operand (relu-free unary math, casts, dropout) or several
// broadcast against each other (add, mul, ...).

#include <string>
#include <utility>
#include <vector>

#include "detail/autograd_nodes.h"
#include "graph/axis_math.h"
#include "graph/rule_context.h"
#include "graph/rules/rules.h"

namespace demon::detail::rules {
namespace {

void pass_through(RuleContext& context, OpCall& call, bool zero_preserving) {
  const ChannelFlow& in = call.in.at(0);
  if (!in.tracked()) {
    return;
  }
  if (!call.out[0].shape || *call.out[0].shape != *in.shape) {
    context.give_up(call, call.op + " changed the shape");
    return;
  }
  call.out[0] = ChannelFlow::tracked(*in.shape, in.dim, in.channels,
                                     zero_preserving ? in.zero_sources : std::vector<int32_t>{});
}

// The channel axis of a broadcast op's output, and the operand that carries it: the first tracked
// operand of full size ({-1, nullptr} when none is).
std::pair<int64_t, const ChannelFlow*> channel_lead(const std::vector<ChannelFlow>& inputs,
                                                    const Shape& out_shape) {
  const int64_t rank = static_cast<int64_t>(out_shape.size());
  for (const auto& v : inputs) {
    if (v.tracked()) {
      const int64_t d = broadcast_dim(v.dim, v.rank(), rank);
      if (v.width() == out_shape[d]) {
        return {d, &v};
      }
    }
  }
  return {-1, nullptr};
}

// Whether a zero channel stays zero through `op`: a sum of zeros is zero (if no operand but
// tracked ones adds to it); a product is zero when one factor is; a quotient when its numerator
// is (and the denominator is not a tracked value). Anything else (max) may not be.
bool preserves_zeros(const std::string& op, const std::vector<ChannelFlow>& inputs,
                     bool only_tracked_operands) {
  if (op == "Add" || op == "Sub")
    return only_tracked_operands;
  if (op == "Mul")
    return true;
  if (op == "Div")
    return inputs[0].tracked() && !inputs[1].tracked();
  return false;
}

}  // namespace

void unary(RuleContext& context, OpCall& call) {
  pass_through(context, call, false);
}

void unary_zero_preserving(RuleContext& context, OpCall& call) {
  pass_through(context, call, true);
}

void binary(RuleContext& context, OpCall& call) {
  const std::string& op = call.op;
  const auto& inputs = call.in;
  const bool scales = op == "Mul" || op == "Div";
  if (inputs.size() == 1) {  // tensor ⊙ scalar
    pass_through(context, call, scales);
    return;
  }
  if (!call.out[0].shape) {
    context.give_up(call, op + " with an unknown output shape");
    return;
  }
  const Shape out_shape = *call.out[0].shape;
  const int64_t rank = static_cast<int64_t>(out_shape.size());
  const auto channel_axis = channel_lead(inputs, out_shape);
  const int64_t dim = channel_axis.first;
  const ChannelFlow* lead = channel_axis.second;
  if (lead == nullptr) {
    context.pin_each(inputs, op + " broadcasts channels");
    return;
  }
  auto& ids = context.ids();
  const int64_t channels = out_shape[dim];
  const std::string cannot_slice = op + " with a per-channel operand the engine cannot slice";
  bool only_tracked_operands = true;  // every operand is a tracked data value, united here
  // Where the result is zero, from the tracked operands': a product is zero where one factor is,
  // anything else (a sum) only where every term is.
  std::vector<int32_t> sources = lead->zero_sources;
  auto& zeros = context.zero_sources();
  auto combine = [&](int32_t a, int32_t b) {
    return op == "Mul" ? ZeroSources::either(a, b) : zeros.both(a, b);
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    const ChannelFlow& v = inputs[k];
    // Where this operand sits under the output's channel axis (right-aligned broadcast).
    // (A plain vector and a flag, not std::optional: GCC 12 warns about the optional's copy.)
    bool shape_known = v.shape.has_value();
    Shape shape = shape_known ? *v.shape : Shape{};
    if (v.kind == ChannelFlow::Kind::kExternal && op == "Mul") {
      const torch::Tensor constant = mul_constant_operand(call.node, /*constant_is_other=*/k == 1);
      if (constant.defined()) {
        shape = constant.sizes().vec();
        shape_known = true;
        const int buffer = context.tensor_index(constant);
        if (buffer >= 0) {
          const int64_t d = broadcast_dim(dim, rank, static_cast<int64_t>(shape.size()));
          if (d >= 0 && shape[d] == channels && channels > 1) {
            context.record_axis(buffer, d, lead->channels);  // a per-channel buffer: sliced too
            continue;
          }
        }
      }
    }
    if (v.tracked()) {
      const int64_t d = broadcast_dim(v.dim, v.rank(), rank);
      if (d == dim && v.width() == channels) {
        ids.unite_all(lead->channels, v.channels);
        for (size_t i = 0; i < sources.size(); ++i) {
          sources[i] = combine(sources[i], v.zero_sources[i]);
        }
        continue;
      }
      ids.pin_all(v.channels, op + " over misaligned channel axes");
      ids.pin_all(lead->channels, op + " over misaligned channel axes");
      only_tracked_operands = false;
      continue;
    }
    only_tracked_operands = false;
    if (!shape_known) {
      ids.pin_all(lead->channels, op + " with an operand of unknown shape");
      continue;
    }
    const int64_t d = broadcast_dim(dim, rank, static_cast<int64_t>(shape.size()));
    const int64_t size_here = d >= 0 ? shape[d] : 1;
    if (size_here == 1 && channels > 1) {
      continue;  // broadcast along channels: no per-channel interaction
    }
    // A fresh random mask over the whole batch (dropout) holds no per-channel state.
    const bool transient_mask = v.kind == ChannelFlow::Kind::kExternal &&
                                shape.size() == out_shape.size() && out_shape.size() > 1 &&
                                shape[0] == out_shape[0];
    if (v.is_param() && !v.transposed) {
      context.record_axis(v.tensor, d, lead->channels);  // per-channel parameter (bias, scale)
    } else if (!transient_mask) {
      ids.pin_all(lead->channels, cannot_slice);
    }
  }
  const bool keep = preserves_zeros(op, inputs, only_tracked_operands);
  if (keep && op == "Div") {
    sources = inputs[0].zero_sources;
  }
  call.out[0] =
      ChannelFlow::tracked(out_shape, dim, lead->channels, keep ? sources : std::vector<int32_t>{});
}

}  // namespace demon::detail::rules
