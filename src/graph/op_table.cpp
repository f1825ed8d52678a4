#include "graph/op_table.h"

#include <algorithm>
#include <unordered_map>

namespace demon::detail {
namespace {

struct OpRow {
  const char* op;
  Rule rule;
};

// clang-format off
const OpRow kOpRows[] = {
    // Parameters, layers (Linear is mm/addmm with a transposed weight).
    {"AccumulateGrad", rules::accumulate_grad},
    {"Mm", rules::mm},
    {"Addmm", rules::addmm},
    {"Prelu", rules::prelu},        // LibTorch 1.13
    {"PreluKernel", rules::prelu},  // 2.x: the weight reshaped to [C, 1, ...] first
    // Per element, f(0) = 0 for the values DemP produces.
    {"Neg", rules::unary_zero_preserving},       {"Clone", rules::unary_zero_preserving},
    {"ToCopy", rules::unary_zero_preserving},    {"Alias", rules::unary_zero_preserving},
    {"NativeDropout", rules::unary_zero_preserving},
    {"Lift", rules::unary_zero_preserving},      {"LiftFresh", rules::unary_zero_preserving},
    // Per element.
    {"Elu", rules::unary},        {"Selu", rules::unary},       {"Celu", rules::unary},
    {"Softplus", rules::unary},   {"Mish", rules::unary},       {"Hardswish", rules::unary},
    {"Hardsigmoid", rules::unary},{"LogSigmoid", rules::unary}, {"Exp", rules::unary},
    {"Log", rules::unary},        {"Sqrt", rules::unary},       {"Rsqrt", rules::unary},
    {"Erf", rules::unary},        {"Sin", rules::unary},        {"Cos", rules::unary},
    {"Abs", rules::unary},        {"Clamp", rules::unary},      {"ClampMin", rules::unary},
    {"ClampMax", rules::unary},   {"Threshold", rules::unary},  {"Reciprocal", rules::unary},
    {"Square", rules::unary},     {"Rrelu", rules::unary},      {"Softshrink", rules::unary},
    {"Hardshrink", rules::unary},
    // Per element over broadcast operands.
    {"Add", rules::binary}, {"Sub", rules::binary}, {"Mul", rules::binary},
    {"Div", rules::binary}, {"Rsub", rules::binary}, {"Maximum", rules::binary},
    {"Minimum", rules::binary}, {"Pow", rules::binary},
    // Shapes.
    {"View", rules::reshape},      {"ReshapeAlias", rules::reshape}, {"UnsafeView", rules::reshape},
    {"Reshape", rules::reshape},   {"Squeeze", rules::reshape},      {"Unsqueeze", rules::reshape},
    {"Flatten", rules::reshape},   {"Unflatten", rules::reshape},    {"ViewAsReal", rules::reshape},
    {"Permute", rules::permute},   {"Transpose", rules::permute},    {"T", rules::permute},
    {"Mean", rules::reduce_or_select},   {"Sum", rules::reduce_or_select},
    {"Select", rules::reduce_or_select}, {"Slice", rules::reduce_or_select},
    {"Narrow", rules::reduce_or_select}, {"Split", rules::reduce_or_select},
    {"SplitWithSizes", rules::reduce_or_select}, {"Unbind", rules::reduce_or_select},
    {"Amax", rules::reduce_or_select},   {"Max", rules::reduce_or_select},
    {"Amin", rules::reduce_or_select},   {"Min", rules::reduce_or_select},
    {"PixelShuffle", rules::pixel_shuffle}, {"PixelUnshuffle", rules::pixel_shuffle},
    {"Expand", rules::expand},
    {"Cat", rules::cat},
    // ChannelSelection.
    {"IndexSelect", rules::index_select},
    {"IndexCopy", rules::index_copy},
    // Mix channels.
    {"LogSoftmax", rules::cross_channel},  {"Softmax", rules::cross_channel},
    {"NllLoss", rules::cross_channel},     {"NllLoss2D", rules::cross_channel},
    {"NllLossNd", rules::cross_channel},   {"MseLoss", rules::cross_channel},
    {"L1Loss", rules::cross_channel},      {"SmoothL1Loss", rules::cross_channel},
    {"HuberLoss", rules::cross_channel},   {"BinaryCrossEntropy", rules::cross_channel},
    {"BinaryCrossEntropyWithLogits", rules::cross_channel},
    {"KlDiv", rules::cross_channel},       {"SoftMarginLoss", rules::cross_channel},
    {"MultiMarginLoss", rules::cross_channel}, {"MultilabelMarginLoss", rules::cross_channel},
    {"Bmm", rules::cross_channel},         {"Baddbmm", rules::cross_channel},
    {"Embedding", rules::cross_channel},   {"EmbeddingDense", rules::cross_channel},
    {"Cumsum", rules::cross_channel},      {"Norm", rules::cross_channel},
    {"LinalgVectorNorm", rules::cross_channel},
    {"Var", rules::cross_channel},         {"Std", rules::cross_channel},
    {"Logsumexp", rules::cross_channel},   {"Prod", rules::cross_channel},
    {"ScaledDotProductAttention", rules::cross_channel},
    {"ScaledDotProductEfficientAttention", rules::cross_channel},
    {"ScaledDotProductFlashAttention", rules::cross_channel},
    {"Dot", rules::cross_channel},         {"Mv", rules::cross_channel},
};

// Families, tried in order when no row names the op.
struct OpFamily {
  const char* part;
  const char* unless;  // nullptr, or a part that excludes the op
  Rule rule;
};
const OpFamily kOpFamilies[] = {
    {"BatchNorm", nullptr, rules::batch_norm},
    {"GroupNorm", nullptr, rules::group_norm},
    {"LayerNorm", nullptr, rules::layer_norm},
    {"Conv", nullptr, rules::conv},  // Convolution, CudnnConvolution, ... (transposed too)
    {"Pool", nullptr, rules::spatial},
    {"Upsample", nullptr, rules::spatial},
    {"Pad", nullptr, rules::spatial},
};
// clang-format on

const std::unordered_map<std::string, Rule>& rows() {
  static const std::unordered_map<std::string, Rule> table = [] {
    std::unordered_map<std::string, Rule> t;
    for (const auto& row : kOpRows) {
      t.emplace(row.op, row.rule);
    }
    return t;
  }();
  return table;
}

bool contains(const std::string& text, const char* part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

Rule find_rule(const std::string& op, const std::vector<std::string>& user_elementwise) {
  if (std::find(user_elementwise.begin(), user_elementwise.end(), op) != user_elementwise.end()) {
    return rules::unary;
  }
  const auto found = rows().find(op);
  if (found != rows().end()) {
    return found->second;
  }
  for (const auto& family : kOpFamilies) {
    if (contains(op, family.part) && (family.unless == nullptr || !contains(op, family.unless))) {
      return family.rule;
    }
  }
  return rules::unknown;
}

std::vector<std::string> known_ops() {
  std::vector<std::string> names;
  for (const auto& row : kOpRows) {
    names.emplace_back(row.op);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace demon::detail
