// Rules for ops whose channels the walker does not follow: the known mixers, and the unknown.

#include "graph/rule_context.h"
#include "graph/rules/rules.h"

namespace demon::detail::rules {

void cross_channel(RuleContext& context, OpCall& call) {
  context.pin_each(call.in, call.op + " mixes channels");
}

void unknown(RuleContext& context, OpCall& call) {
  context.unknown_op(call);
}

}  // namespace demon::detail::rules
