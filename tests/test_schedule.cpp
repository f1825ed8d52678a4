#include <gtest/gtest.h>

#include <stdexcept>
#include <type_traits>

#include "demon/schedule.h"

namespace {

using demon::Schedule;
using demon::ScheduleKind;
using demon::ScheduleOptions;

// Expected values below were computed by hand from optax's closed form:
// cosine(start, end, pct) = end + (start - end) / 2 * (cos(pi * pct) + 1).

TEST(ScheduleTest, OneCycleFollowsOptaxAtStartPeakEndAndAfterSpan) {
  Schedule s(ScheduleOptions(ScheduleKind::kOneCycle, 1.0, 1000));    // peak at step 300
  EXPECT_DOUBLE_EQ(s(0), 0.04);                                       // peak / 25
  EXPECT_DOUBLE_EQ(s(75), 1.0 - 0.48 * (1.0 + 0.70710678118654752));  // pct 1/4 of the rise
  EXPECT_DOUBLE_EQ(s(150), 0.52);                                     // halfway up: (0.04+1)/2
  EXPECT_DOUBLE_EQ(s(300), 1.0);                                      // peak
  EXPECT_DOUBLE_EQ(s(650), 0.500002);                                 // halfway down
  EXPECT_DOUBLE_EQ(s(1000), 4e-6);                                    // peak / (25 * 1e4)
  EXPECT_DOUBLE_EQ(s(1001), 4e-6);
  EXPECT_DOUBLE_EQ(s(1000000), 4e-6);
  EXPECT_DOUBLE_EQ(s(-3), 0.04);  // before the start: the start value
}

TEST(ScheduleTest, OneCycleUsesTruncatedPeakStepAndCustomFactors) {
  // int(0.3 * 7) = 2: the peak is at step 2, as optax truncates.
  Schedule s(ScheduleOptions(ScheduleKind::kOneCycle, 2.0, 7)
                 .pct_start(0.3)
                 .div_factor(10.0)
                 .final_div_factor(100.0));
  EXPECT_DOUBLE_EQ(s(0), 0.2);
  EXPECT_DOUBLE_EQ(s(1), 1.1);  // halfway between 0.2 and 2
  EXPECT_DOUBLE_EQ(s(2), 2.0);
  EXPECT_DOUBLE_EQ(s(7), 0.002);
  EXPECT_LT(s(6), s(5));
  EXPECT_GT(s(6), 0.002);
}

TEST(ScheduleTest, OneCycleWithPeakAtStepZeroSkipsTheRise) {
  Schedule s(ScheduleOptions(ScheduleKind::kOneCycle, 1.0, 2).pct_start(0.4));  // int(0.8) = 0
  EXPECT_DOUBLE_EQ(s(0), 1.0);
  EXPECT_DOUBLE_EQ(s(1), 0.500002);
  EXPECT_DOUBLE_EQ(s(2), 4e-6);
}

TEST(ScheduleTest, ConstantIgnoresSpan) {
  Schedule s(ScheduleOptions(ScheduleKind::kConstant, 3.5, 0));
  EXPECT_DOUBLE_EQ(s(0), 3.5);
  EXPECT_DOUBLE_EQ(s(123456), 3.5);
}

TEST(ScheduleTest, CosineDecayReachesZeroAtSpan) {
  Schedule s(ScheduleOptions(ScheduleKind::kCosineDecay, 2.0, 100));
  EXPECT_DOUBLE_EQ(s(0), 2.0);
  EXPECT_DOUBLE_EQ(s(25), 1.0 + 0.70710678118654752);
  EXPECT_DOUBLE_EQ(s(50), 1.0);
  EXPECT_NEAR(s(100), 0.0, 1e-15);
  EXPECT_NEAR(s(150), 0.0, 1e-15);
}

TEST(ScheduleTest, LinearWarmupRisesThenHolds) {
  Schedule s(ScheduleOptions(ScheduleKind::kLinearWarmup, 2.0, 100));
  EXPECT_DOUBLE_EQ(s(0), 0.0);
  EXPECT_DOUBLE_EQ(s(25), 0.5);
  EXPECT_DOUBLE_EQ(s(100), 2.0);
  EXPECT_DOUBLE_EQ(s(250), 2.0);
}

TEST(ScheduleTest, InvalidOptionsAreRejectedByName) {
  auto message_of = [](const ScheduleOptions& options) {
    try {
      Schedule s(options);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message_of(ScheduleOptions(ScheduleKind::kOneCycle, -1.0, 10)).find("peak"),
            std::string::npos);
  EXPECT_NE(message_of(ScheduleOptions(ScheduleKind::kCosineDecay, 1.0, 0)).find("span"),
            std::string::npos);
  EXPECT_NE(message_of(ScheduleOptions(ScheduleKind::kOneCycle, 1.0, 10).pct_start(1.0))
                .find("pct_start"),
            std::string::npos);
  EXPECT_NE(message_of(ScheduleOptions(ScheduleKind::kOneCycle, 1.0, 10).div_factor(0.0))
                .find("div_factor"),
            std::string::npos);
  EXPECT_NE(message_of(ScheduleOptions(ScheduleKind::kOneCycle, 1.0, 10).final_div_factor(-2))
                .find("final_div_factor"),
            std::string::npos);
}

TEST(ScheduleTest, KindNamesRoundTrip) {
  for (auto kind : {ScheduleKind::kOneCycle, ScheduleKind::kConstant, ScheduleKind::kCosineDecay,
                    ScheduleKind::kLinearWarmup}) {
    EXPECT_EQ(demon::schedule_kind_from_string(demon::to_string(kind)), kind);
  }
  EXPECT_THROW(demon::schedule_kind_from_string("onecycle"), std::invalid_argument);
}

// A ScheduleKind is no ScheduleOptions by accident (a Schedule built from a bare kind would have
// peak 1 over one step); the default options are those of the explicit constructor.
static_assert(!std::is_convertible_v<ScheduleKind, ScheduleOptions>);
TEST(ScheduleTest, DefaultOptionsAreOneCycleToOneOverOneStep) {
  const ScheduleOptions defaults;
  const ScheduleOptions spelled(ScheduleKind::kOneCycle);
  EXPECT_EQ(defaults.kind(), spelled.kind());
  EXPECT_EQ(defaults.peak(), 1.0);
  EXPECT_EQ(defaults.span(), 1);
  EXPECT_EQ(Schedule(defaults)(0), Schedule(spelled)(0));
  EXPECT_EQ(Schedule(ScheduleOptions().kind(ScheduleKind::kConstant).peak(2.0))(5), 2.0);
}

}  // namespace
