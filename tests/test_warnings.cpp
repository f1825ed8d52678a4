// The warning channel: where demon's warnings go, and how a program takes them over.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "demon/warnings.h"

namespace {

TEST(WarningsTest, AHandlerTakesEveryWarningUntilReplaced) {
  std::vector<std::string> first, second;
  const demon::WarningHandler original =
      demon::set_warning_handler([&](const std::string& message) { first.push_back(message); });
  demon::warn("one");
  const demon::WarningHandler previous =
      demon::set_warning_handler([&](const std::string& message) { second.push_back(message); });
  demon::warn("two");
  ASSERT_TRUE(previous);  // the first handler comes back, to be restored or chained
  previous("three");
  EXPECT_EQ(first, (std::vector<std::string>{"one", "three"}));
  EXPECT_EQ(second, (std::vector<std::string>{"two"}));
  demon::set_warning_handler(original);
}

TEST(WarningsTest, TheDefaultWritesOneLineToStderr) {
  const demon::WarningHandler saved = demon::set_warning_handler(nullptr);  // the default
  testing::internal::CaptureStderr();
  demon::warn("no scale for lambda");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "demon: warning: no scale for lambda\n");
  demon::set_warning_handler(saved);
}

}  // namespace
