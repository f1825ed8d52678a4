#pragma once

// The channel rules, one per kind of op. Each one reads the op's inputs (ChannelFlow) and sets
// its outputs, uniting, pinning and recording through the RuleContext. Which op gets which rule
// is in op_table.cpp.

namespace demon::detail {

class RuleContext;
struct OpCall;

using Rule = void (*)(RuleContext& context, OpCall& call);

namespace rules {

// layers.cpp: ops whose parameters belong to a layer module, and activations.
void accumulate_grad(RuleContext& context, OpCall& call);  // a parameter enters the graph
void activation(RuleContext& context, OpCall& call);       // a site whose output DemP reads
void conv(RuleContext& context, OpCall& call);
void batch_norm(RuleContext& context, OpCall& call);
void group_norm(RuleContext& context, OpCall& call);
void layer_norm(RuleContext& context, OpCall& call);
void prelu(RuleContext& context, OpCall& call);
void mm(RuleContext& context, OpCall& call);     // Linear without bias
void addmm(RuleContext& context, OpCall& call);  // Linear with bias

// elementwise.cpp
void unary(RuleContext& context, OpCall& call);                  // f(0) may be nonzero
void unary_zero_preserving(RuleContext& context, OpCall& call);  // f(0) = 0
void binary(RuleContext& context, OpCall& call);                 // broadcasting add, mul, ...

// shapes.cpp: where the channel axis goes.
void spatial(RuleContext& context, OpCall& call);  // pooling, upsampling, padding
void reshape(RuleContext& context, OpCall& call);
void pixel_shuffle(RuleContext& context, OpCall& call);  // and pixel_unshuffle
void permute(RuleContext& context, OpCall& call);
void reduce_or_select(RuleContext& context, OpCall& call);
void expand(RuleContext& context, OpCall& call);
void cat(RuleContext& context, OpCall& call);

// selection.cpp: ChannelSelection's index_select / index_copy.
void index_select(RuleContext& context, OpCall& call);
void index_copy(RuleContext& context, OpCall& call);

// Known to mix channels (softmax, losses, attention products): pins them.
void cross_channel(RuleContext& context, OpCall& call);
// Not known: pins them and counts the op in unknown_ops().
void unknown(RuleContext& context, OpCall& call);

}  // namespace rules
}  // namespace demon::detail
