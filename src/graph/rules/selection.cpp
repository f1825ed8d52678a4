// Rules for ChannelSelection (index_select(1, source), then zeros.index_copy(1, target, ·)):
// its input and output channels are virtual axes of the layer, cut like any other.

#include "demon/channel_selection.h"
#include "detail/autograd_nodes.h"
#include "graph/rule_context.h"
#include "graph/rules/rules.h"

namespace demon::detail::rules {
namespace {

// The ChannelSelection whose `source` (or `target`) index tensor this is, else nullptr.
ChannelSelectionImpl* selection_with(RuleContext& context, const torch::Tensor& index,
                                     bool source) {
  const int tensor = context.tensor_index(index);
  if (tensor < 0) {
    return nullptr;
  }
  auto* selection = dynamic_cast<ChannelSelectionImpl*>(context.module_of(tensor));
  if (selection == nullptr) {
    return nullptr;
  }
  const auto& expected = source ? selection->source : selection->target;
  return expected.unsafeGetTensorImpl() == index.unsafeGetTensorImpl() ? selection : nullptr;
}

}  // namespace

void index_select(RuleContext& context, OpCall& call) {
  const ChannelFlow& x = call.in.at(0);
  if (auto* selection = selection_with(context, saved_index(call.node), /*source=*/true)) {
    const int layer = context.layer_for(selection, LayerKind::kChannelSelection);
    const auto in_ids =
        context.ids_along(x, 1, selection->in_channels(), "input of " + context.layer(layer).name);
    context.record_virtual_axis(layer, 0, in_ids);
    const auto source = selection->source.to(torch::kCPU).contiguous();
    const auto target = selection->target.to(torch::kCPU).contiguous();
    std::vector<bool> read(in_ids.size(), false);
    for (int64_t k = 0; k < source.numel(); ++k) {
      read[source.data_ptr<int64_t>()[k]] = true;
    }
    if (x.tracked() && x.dim == 1) {
      context.record_read(x, &read);
    }
    const auto& out_ids = context.selection_outputs(selection);
    std::vector<int64_t> channels;
    for (int64_t k = 0; k < target.numel(); ++k) {
      channels.push_back(out_ids[target.data_ptr<int64_t>()[k]]);
    }
    call.out[0] = ChannelFlow::tracked(*call.out[0].shape, 1, channels);
    return;
  }
  // Any other index_select: fine along another axis, not along the channel axis. Same sizes
  // everywhere could be a permutation of channels: refuse.
  if (x.tracked() && call.out[0].shape && *call.out[0].shape == *x.shape) {
    context.give_up(call, "index_select that may permute channels");
    return;
  }
  reduce_or_select(context, call);
}

void index_copy(RuleContext& context, OpCall& call) {
  if (auto* selection = selection_with(context, saved_index(call.node), /*source=*/false)) {
    call.out[0] = ChannelFlow::tracked(*call.out[0].shape, 1, context.selection_outputs(selection));
    return;
  }
  context.give_up(call, "index_copy");
}

}  // namespace demon::detail::rules
