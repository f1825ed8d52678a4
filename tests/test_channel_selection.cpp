// ChannelSelection: the module that stands in for a pruned residual branch's channel mapping.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>
#include <stdexcept>
#include <vector>

#include "demon/channel_selection.h"
#include "demon/errors.h"

namespace {

TEST(ChannelSelectionTest, IdentityThenSelection) {
  demon::ChannelSelection selection(4);
  const auto x = torch::randn({2, 4, 3, 3});
  EXPECT_TRUE(torch::equal(selection(x), x));
  // Drop input 1 (its output gets zero) and output 3.
  selection->select({0, 2, 3}, {0, 1, 2});
  EXPECT_EQ(selection->in_channels(), 3);
  EXPECT_EQ(selection->out_channels(), 3);
  const auto x3 = torch::cat({x.slice(1, 0, 1), x.slice(1, 2, 4)}, 1);
  const auto y = selection(x3);
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 3, 3}));
  EXPECT_TRUE(torch::equal(y.select(1, 0), x.select(1, 0)));
  EXPECT_TRUE(torch::equal(y.select(1, 1), torch::zeros_like(y.select(1, 1))));
  EXPECT_TRUE(torch::equal(y.select(1, 2), x.select(1, 2)));
  EXPECT_THROW(selection(x), demon::ValueError);  // 4 channels no longer fit
  std::ostringstream printed;
  selection->pretty_print(printed);
  EXPECT_EQ(printed.str(), "demon::ChannelSelection(in=3, out=3, entries=2)");
  EXPECT_THROW(demon::ChannelSelection(0), std::invalid_argument);
}

}  // namespace
