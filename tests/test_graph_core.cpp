// The graph engine's torch-free parts, table by table: channel ids, zero sources, and where a
// channel axis goes through reshapes, reductions, broadcasts, concatenations and permutations.

#include <gtest/gtest.h>

#include <stdexcept>

#include "graph/axis_math.h"
#include "graph/channel_ids.h"

namespace demon::detail {
namespace {

TEST(ChannelIdsTest, ClassesMergeUnderTheirSmallestId) {
  ChannelIds ids;
  const auto a = ids.make(3);
  const auto b = ids.make(3);
  EXPECT_EQ(a, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(b, (std::vector<int64_t>{3, 4, 5}));
  ids.unite_all(b, a);
  ids.unite(5, 1);
  EXPECT_EQ(ids.root(3), 0);
  EXPECT_EQ(ids.root(4), 1);
  EXPECT_EQ(ids.root(5), 1);
  EXPECT_EQ(ids.root(2), 1);
  EXPECT_EQ(ids.size(), 6);
}

TEST(ChannelIdsTest, AnIdKeepsTheFirstReasonItWasPinnedFor) {
  ChannelIds ids;
  const auto pinned = ids.make_pinned(2, "model output");
  ids.pin(pinned[0], "later");
  const auto free = ids.make(1);
  EXPECT_EQ(ids.pin_reason(pinned[0]), "model output");
  EXPECT_EQ(ids.pin_reason(pinned[1]), "model output");
  EXPECT_EQ(ids.pin_reason(free[0]), "");
}

TEST(ChannelIdsTest, ReadsAndUnobservabilityStayPerId) {
  ChannelIds ids;
  const auto c = ids.make(2);
  ids.add_reads(c[0], {3, 1});
  ids.add_reads(c[0], {2});
  ids.mark_unobservable(c[1]);
  EXPECT_EQ(ids.read_sites(c[0]), (std::vector<int32_t>{3, 1, 2}));
  EXPECT_FALSE(ids.unobservable(c[0]));
  EXPECT_TRUE(ids.unobservable(c[1]));
  EXPECT_THROW(ids.pin(7, "no such id"), std::out_of_range);
}

TEST(ZeroSourcesTest, SetsAreInternedSorted) {
  ZeroSources sources;
  EXPECT_EQ(sources.intern({}), 0);
  const int32_t a = sources.intern({2, 0, 2});
  EXPECT_NE(a, 0);
  EXPECT_EQ(sources.sites(a), (std::vector<int32_t>{0, 2}));
  EXPECT_EQ(sources.intern({0, 2}), a);
  EXPECT_NE(sources.intern({1}), a);
}

TEST(ZeroSourcesTest, ASumNeedsEveryTermAProductOneFactor) {
  ZeroSources sources;
  const int32_t a = sources.intern({0, 2});
  const int32_t b = sources.intern({1});
  // A sum with a term that is not provably zero is not either.
  EXPECT_EQ(sources.both(0, b), 0);
  EXPECT_EQ(sources.both(a, 0), 0);
  EXPECT_EQ(sources.both(a, a), a);
  EXPECT_EQ(sources.sites(sources.both(a, b)), (std::vector<int32_t>{0, 1, 2}));
  // A product is zero where either factor is.
  EXPECT_EQ(ZeroSources::either(0, b), b);
  EXPECT_EQ(ZeroSources::either(a, 0), a);
  EXPECT_EQ(ZeroSources::either(a, b), a);
  EXPECT_EQ(ZeroSources::either(0, 0), 0);
}

struct ReshapeCase {
  Shape in;
  int64_t dim;
  Shape out;
  std::vector<ReshapedAxis> expected;
};

TEST(AxisMathTest, Reshapes) {
  const std::vector<ReshapeCase> cases = {
      // flatten(1): each channel spans H·W outputs
      {{2, 8, 4, 4}, 1, {2, 128}, {{1, 16, 1}}},
      // flatten(2): the channel axis itself is untouched
      {{2, 8, 4, 4}, 1, {2, 8, 16}, {{1, 1, 1}}},
      // unflatten of 32 features into 8 x 4: blocks of 4 (one channel only if uniform), or 8
      // tiles of 4 (only if the channels repeat with period 4)
      {{2, 32}, 1, {2, 8, 4}, {{1, 1, 4}, {2, 1, 1, 8}}},
      // channels on the last dim merged with the dim before: the run of 3 channels, 3 times
      {{2, 3, 3}, 2, {2, 9}, {{1, 1, 1, 3}}},
      // a split that mixes the axis with the next one
      {{2, 8, 4}, 1, {2, 4, 8}, {}},
      // the batch dim merged with the channels
      {{2, 6, 5}, 1, {12, 5}, {{0, 1, 1, 2}}},
      // InstanceNorm's view to [1, N·C, H, W] and back; the fold over 6 comes first (it needs
      // uniform blocks, which tiled channels are not)
      {{4, 6, 5, 5}, 1, {1, 24, 5, 5}, {{1, 1, 1, 4}}},
      {{1, 24, 5, 5}, 1, {4, 6, 5, 5}, {{0, 1, 6, 1}, {1, 1, 1, 4}}},
      // merged both ways: batch in front, the map after
      {{2, 3, 4}, 1, {24}, {{0, 4, 1, 2}}},
      // the batch does not split evenly off 24 channels here
      {{1, 24, 5}, 1, {5, 24}, {}},
      // unsqueeze: the channels stay whole, the fold over the size-1 dim comes second
      {{2, 8}, 1, {2, 1, 8}, {{2, 1, 1}, {1, 1, 8}}},
      {{2, 8}, 1, {2, 8, 1}, {{1, 1, 1}, {2, 1, 1, 8}}},
      // squeeze of a leading size-1 dim
      {{1, 8, 3}, 1, {8, 3}, {{0, 1, 1}}},
      // a dim out of range has no mapping
      {{2, 8}, 2, {16}, {}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(shape_string(c.in) + " dim " + std::to_string(c.dim) + " -> " +
                 shape_string(c.out));
    EXPECT_EQ(reshape_candidates(c.in, c.dim, c.out), c.expected);
  }
}

struct ReductionCase {
  int64_t rank;
  int64_t dim;
  std::vector<int64_t> reduced;
  bool keepdim;
  std::optional<int64_t> expected;
};

TEST(AxisMathTest, ReductionsWithSavedDims) {
  const std::vector<ReductionCase> cases = {
      {4, 1, {2, 3}, false, 1},          // x.mean({2, 3})
      {4, 1, {-1, -2}, false, 1},        // the same dims, counted from the end
      {4, 1, {2, 3}, true, 1},           // keepdim
      {4, 2, {0, 1}, false, 0},          // both dims before the channels
      {4, 2, {0, 1}, true, 2},           // ... kept as size 1
      {4, 1, {1}, false, std::nullopt},  // over the channels
      {4, 1, {-3}, false, std::nullopt}, {3, 2, {1, 1}, false, 1},  // a dim named twice counts once
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("rank " + std::to_string(c.rank) + " dim " + std::to_string(c.dim));
    EXPECT_EQ(axis_after_reduction(c.rank, c.dim, c.reduced, c.keepdim), c.expected);
  }
  EXPECT_THROW(axis_after_reduction(4, 1, {4}, false), std::out_of_range);
  EXPECT_THROW(axis_after_reduction(4, 1, {-5}, false), std::out_of_range);
}

struct InferredReductionCase {
  Shape in;
  int64_t dim;
  Shape out;
  std::set<int64_t> expected;
};

TEST(AxisMathTest, ReductionsInferredFromShapes) {
  const std::vector<InferredReductionCase> cases = {
      {{2, 8, 4, 4}, 1, {2, 8}, {1}},
      // 32 channels on a 32x32 map: which 32 is left cannot be told from sizes alone
      {{2, 32, 32, 32}, 1, {2, 32}, {-1, 1}},
      {{2, 8, 4}, 1, {2, 4}, {-1}},      // over the channels
      {{2, 8, 4}, 1, {2, 8, 2}, {1}},    // a slice of another dim
      {{2, 8, 4}, 1, {2, 4, 4}, {-1}},   // a slice of the channels
      {{2, 8, 4}, 1, {2, 8, 4, 1}, {}},  // not a reduction
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(shape_string(c.in) + " -> " + shape_string(c.out));
    EXPECT_EQ(axis_positions_after_reduction(c.in, c.dim, c.out), c.expected);
  }
}

TEST(AxisMathTest, BroadcastsAlignFromTheRight) {
  EXPECT_EQ(broadcast_dim(1, 4, 4), 1);
  EXPECT_EQ(broadcast_dim(0, 1, 4), 3);   // a [C] bias under [N, H, W, C]
  EXPECT_EQ(broadcast_dim(0, 3, 4), 1);   // a [C, 1, 1] scale under [N, C, H, W]
  EXPECT_EQ(broadcast_dim(3, 4, 3), 2);   // and back
  EXPECT_EQ(broadcast_dim(1, 4, 2), -1);  // falls off the front
}

TEST(AxisMathTest, ConcatenationDim) {
  EXPECT_EQ(cat_dim({Shape{2, 3, 4}, Shape{2, 5, 4}}, {2, 8, 4}), 1);
  EXPECT_EQ(cat_dim({Shape{2, 3, 4}, std::nullopt}, {2, 3, 9}), 2);
  EXPECT_EQ(cat_dim({Shape{2, 3, 4}, Shape{3, 4}}, {2, 3, 4}), -1);
  EXPECT_EQ(cat_dim({std::nullopt}, {2, 3}), -1);
}

TEST(AxisMathTest, Permutations) {
  EXPECT_EQ(axis_after_permutation({0, 2, 3, 1}, 1), 3);  // NCHW -> NHWC
  EXPECT_EQ(axis_after_permutation({0, 3, 1, 2}, 1), 2);
  EXPECT_EQ(axis_after_permutation({1, 0}, 0), 1);
  EXPECT_EQ(axis_after_permutation({0, 1}, 2), -1);
}

TEST(AxisMathTest, ShapesReadAsText) {
  EXPECT_EQ(shape_string({}), "[]");
  EXPECT_EQ(shape_string({2, 3}), "[2, 3]");
  EXPECT_EQ(product({2, 3, 4}, 1, 3), 12);
  EXPECT_EQ(product({2, 3, 4}, 2, 9), 4);
  EXPECT_EQ(product({2, 3, 4}, 1, 1), 1);
}

}  // namespace
}  // namespace demon::detail
