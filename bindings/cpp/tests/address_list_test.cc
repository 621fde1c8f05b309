// Weight → copies arithmetic of the plugin: proportional, reduced, capped.
#include <gtest/gtest.h>

#include "address_list.h"

namespace gnaming::internal {
namespace {

TEST(WeightCopies, EqualWeightsGiveOneCopyEach) {
  EXPECT_EQ(WeightCopies({5, 5, 5}, 16), (std::vector<uint32_t>{1, 1, 1}));
}

TEST(WeightCopies, WeightsAreReducedByTheirCommonDivisor) {
  EXPECT_EQ(WeightCopies({200, 100, 300}, 16), (std::vector<uint32_t>{2, 1, 3}));
}

TEST(WeightCopies, LargeRatiosAreScaledDownToTheCap) {
  EXPECT_EQ(WeightCopies({1, 1000}, 16), (std::vector<uint32_t>{1, 16}));
  EXPECT_EQ(WeightCopies({32, 64, 3}, 16), (std::vector<uint32_t>{8, 16, 1}));
}

TEST(WeightCopies, ZeroCountsAsOne) {
  EXPECT_EQ(WeightCopies({0, 2}, 16), (std::vector<uint32_t>{1, 2}));
}

}  // namespace
}  // namespace gnaming::internal
