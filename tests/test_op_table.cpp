// Which rule the walker gives each autograd op: named rows, families matched by part of the
// name, the user's per-element ops, and the unknown.

#include <gtest/gtest.h>

#include <algorithm>

#include "graph/op_table.h"

namespace demon::detail {
namespace {

TEST(OpTableTest, NamedOpsGetTheirRule) {
  EXPECT_EQ(find_rule("AccumulateGrad"), rules::accumulate_grad);
  EXPECT_EQ(find_rule("Add"), rules::binary);
  EXPECT_EQ(find_rule("Mul"), rules::binary);
  EXPECT_EQ(find_rule("Neg"), rules::unary_zero_preserving);
  EXPECT_EQ(find_rule("Exp"), rules::unary);
  EXPECT_EQ(find_rule("View"), rules::reshape);
  EXPECT_EQ(find_rule("Transpose"), rules::permute);
  EXPECT_EQ(find_rule("Mean"), rules::reduce_or_select);
  EXPECT_EQ(find_rule("Cat"), rules::cat);
  EXPECT_EQ(find_rule("Addmm"), rules::addmm);
  EXPECT_EQ(find_rule("IndexSelect"), rules::index_select);
  EXPECT_EQ(find_rule("Softmax"), rules::cross_channel);
}

TEST(OpTableTest, FamiliesMatchByPartOfTheName) {
  EXPECT_EQ(find_rule("Convolution"), rules::conv);
  EXPECT_EQ(find_rule("CudnnConvolution"), rules::conv);
  EXPECT_EQ(find_rule("SlowConvTranspose2D"), rules::conv);
  EXPECT_EQ(find_rule("NativeBatchNorm"), rules::batch_norm);
  EXPECT_EQ(find_rule("CudnnBatchNorm"), rules::batch_norm);
  EXPECT_EQ(find_rule("NativeGroupNorm"), rules::group_norm);
  EXPECT_EQ(find_rule("NativeLayerNorm"), rules::layer_norm);
  EXPECT_EQ(find_rule("MaxPool2DWithIndices"), rules::spatial);
  EXPECT_EQ(find_rule("UpsampleNearest2D"), rules::spatial);
  EXPECT_EQ(find_rule("ReflectionPad2D"), rules::spatial);
}

TEST(OpTableTest, UserOpsArePerElementAndTheRestIsUnknown) {
  EXPECT_EQ(find_rule("MyOp"), rules::unknown);
  EXPECT_EQ(find_rule("MyOp", {"Other", "MyOp"}), rules::unary);
  // The user's word wins over a row: a custom "Add" is per element, not broadcasting.
  EXPECT_EQ(find_rule("Add", {"Add"}), rules::unary);
  EXPECT_EQ(find_rule(""), rules::unknown);
}

TEST(OpTableTest, EachOpHasOneRow) {
  const auto ops = known_ops();
  EXPECT_GT(ops.size(), 80u);
  EXPECT_TRUE(std::is_sorted(ops.begin(), ops.end()));
  EXPECT_EQ(std::adjacent_find(ops.begin(), ops.end()), ops.end()) << "an op with two rows";
  for (const auto& op : ops) {
    EXPECT_NE(find_rule(op), rules::unknown) << op;
  }
}

}  // namespace
}  // namespace demon::detail
