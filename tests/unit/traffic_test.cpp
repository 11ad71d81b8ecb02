// The gateway's recent traffic per module (http/metrics.hpp), the admin console's charts: seconds, counts,
// server errors and percentiles, and its bounds.
#include <gtest/gtest.h>

#include "keel/http/metrics.hpp"

using keel::http::RecentTraffic;

TEST(RecentTraffic, PercentilesAreWithinABucketOfTheTrueOnes) {
  RecentTraffic t;
  // 98 requests of 1 ms and 2 of 80 ms in second 1000.
  for (int i = 0; i < 98; ++i) t.record("memory", 200, 0.001, 1000);
  for (int i = 0; i < 2; ++i) t.record("memory", 200, 0.080, 1000);
  const auto s = t.last(1, 1001).at("memory").at(0);
  EXPECT_EQ(s.at, 1000);
  EXPECT_EQ(s.requests, 100u);
  EXPECT_EQ(s.errors, 0u);
  EXPECT_GE(s.p50, 0.001);
  EXPECT_LE(s.p50, 0.001 * 1.4143);
  EXPECT_GE(s.p99, 0.080);  // the 99th of 100 is one of the slow two
  EXPECT_LE(s.p99, 0.080 * 1.4143);
}

TEST(RecentTraffic, ServerErrorsCountAndClientErrorsDoNot) {
  RecentTraffic t;
  t.record("auth", 500, 0.001, 10);
  t.record("auth", 503, 0.001, 10);
  t.record("auth", 404, 0.001, 10);
  t.record("auth", 401, 0.001, 10);
  const auto s = t.last(1, 11).at("auth").at(0);
  EXPECT_EQ(s.requests, 4u);
  EXPECT_EQ(s.errors, 2u);
}

TEST(RecentTraffic, SecondsAreWholeOldOnesAreEmptyAndTheCurrentOneIsLeftOut) {
  RecentTraffic t;
  t.record("billing", 200, 0.002, 100);
  t.record("billing", 200, 0.002, 102);
  t.record("billing", 200, 0.002, 103);  // still filling at 103: not reported
  const auto series = t.last(4, 103).at("billing");
  ASSERT_EQ(series.size(), 4u);
  EXPECT_EQ(series[0].at, 99);
  EXPECT_EQ(series[3].at, 102);
  EXPECT_EQ(series[0].requests, 0u);
  EXPECT_EQ(series[0].p50, 0);
  EXPECT_EQ(series[1].requests, 1u);
  EXPECT_EQ(series[2].requests, 0u);
  EXPECT_EQ(series[3].requests, 1u);
  // Two minutes on, second 100's slot has been reused: its count is not reported as a later second's.
  t.record("billing", 200, 0.002, 100 + RecentTraffic::kSeconds);
  const auto later = t.last(RecentTraffic::kSeconds, 101 + RecentTraffic::kSeconds).at("billing");
  ASSERT_EQ(later.size(), RecentTraffic::kSeconds - 1);
  uint64_t total = 0;
  for (const auto& s : later) total += s.requests;
  EXPECT_EQ(total, 3u);  // 102, 103 and the new one at 220; 100's is gone
}

TEST(RecentTraffic, ModulesPastTheCapAreCountedAsOther) {
  RecentTraffic t;
  for (size_t i = 0; i < RecentTraffic::kModules + 10; ++i) t.record("m" + std::to_string(i), 200, 0.001, 5);
  const auto all = t.last(1, 6);
  EXPECT_EQ(all.size(), RecentTraffic::kModules + 1);
  EXPECT_EQ(all.at("other").at(0).requests, 10u);
}

TEST(RecentTraffic, BucketsGrowByTheSquareRootOfTwo) {
  EXPECT_EQ(RecentTraffic::bucket_of(0), 0u);
  EXPECT_EQ(RecentTraffic::bucket_of(50e-6), 0u);
  EXPECT_EQ(RecentTraffic::bucket_of(60e-6), 1u);
  EXPECT_EQ(RecentTraffic::bucket_of(100e-6), 2u);
  EXPECT_EQ(RecentTraffic::bucket_of(1e6), RecentTraffic::kBuckets - 1);
  for (double s : {0.0001, 0.00123, 0.05, 0.7, 3.0}) {
    const size_t b = RecentTraffic::bucket_of(s);
    EXPECT_LE(s, RecentTraffic::upper_bound(b) * (1 + 1e-9)) << s;
    EXPECT_GT(s, RecentTraffic::upper_bound(b - 1)) << s;
  }
}
