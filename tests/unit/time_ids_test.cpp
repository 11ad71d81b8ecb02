#include <gtest/gtest.h>

#include <set>

#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"

TEST(Time, FormatsRfc3339WithMilliseconds) {
  auto t = keel::SystemTime(std::chrono::milliseconds(1764064800123));
  EXPECT_EQ(keel::format_rfc3339(t), "2025-11-25T10:00:00.123Z");
}

TEST(Time, ParsesOurFormatAndPostgresTimestamptz) {
  EXPECT_EQ(keel::normalize_timestamp("2026-11-25T10:00:00.123Z"), "2026-11-25T10:00:00.123Z");
  EXPECT_EQ(keel::normalize_timestamp("2026-11-25 10:00:00.123456+00"), "2026-11-25T10:00:00.123Z");
  EXPECT_EQ(keel::normalize_timestamp("2026-11-25 12:00:00+02:00"), "2026-11-25T10:00:00.000Z");
  EXPECT_FALSE(keel::parse_rfc3339("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(keel::parse_rfc3339("yesterday"));
  EXPECT_FALSE(keel::parse_rfc3339("2026-11-25T10:00:00"));
  // Beyond system_clock's range it saturates instead of wrapping into the past.
  EXPECT_GT(keel::normalize_timestamp("2999-01-01T00:00:00Z"), "2262");
  EXPECT_LT(keel::normalize_timestamp("1000-01-01T00:00:00Z"), "1700");
}

TEST(Ids, UuidV7IsVersion7AndTimeOrdered) {
  std::string prev;
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = keel::uuid_v7();
    ASSERT_TRUE(keel::is_uuid(id)) << id;
    EXPECT_EQ(id[14], '7');
    EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b');
    EXPECT_GE(id.substr(0, 13), prev.substr(0, std::min<size_t>(13, prev.size())));
    prev = id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_TRUE(keel::is_uuid(keel::fast_uuid_v7()));
}

TEST(Ids, RequestIdSanity) {
  EXPECT_TRUE(keel::is_sane_request_id("abc-123_X.y:z"));
  EXPECT_FALSE(keel::is_sane_request_id(""));
  EXPECT_FALSE(keel::is_sane_request_id("has space"));
  EXPECT_FALSE(keel::is_sane_request_id("new\nline"));
  EXPECT_FALSE(keel::is_sane_request_id(std::string(129, 'a')));
}
