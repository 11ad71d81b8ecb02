#include "keel/http/pagination.hpp"

#include <gtest/gtest.h>

#include "keel/core/error.hpp"

using namespace keel::http;

namespace {
std::string_view no_headers(const void*, std::string_view) { return {}; }
Page page_of(const std::string& query) {
  Request req(nullptr, &no_headers);
  req.query = query;
  return parse_page(req);
}
}  // namespace

TEST(Pagination, DefaultsAndLimits) {
  EXPECT_EQ(page_of("").limit, 50);
  EXPECT_EQ(page_of("limit=500").limit, 500);
  EXPECT_THROW(page_of("limit=0"), keel::Error);
  EXPECT_THROW(page_of("limit=501"), keel::Error);
  EXPECT_THROW(page_of("limit=ten"), keel::Error);
}

TEST(Pagination, CursorsRoundTrip) {
  const std::string key = "01a21069-3612-7629-a6f3-ac7ee061af7c";
  const std::string cursor = encode_cursor(key);
  auto p = page_of("limit=1&cursor=" + cursor);
  ASSERT_TRUE(p.after.has_value());
  EXPECT_EQ(*p.after, key);
  EXPECT_THROW(page_of("cursor=bm90LW91cnM"), keel::Error);
}

TEST(QueryParams, DecodeEscapesAndPlus) {
  Request req(nullptr, &no_headers);
  req.query = "a=1&b=hello+world%21&c&d=%zz&name=%E2%9C%93";
  EXPECT_EQ(req.query_param("a").value(), "1");
  EXPECT_EQ(req.query_param("b").value(), "hello world!");
  EXPECT_EQ(req.query_param("c").value(), "");
  EXPECT_FALSE(req.query_param("missing").has_value());
  EXPECT_EQ(req.query_param("name").value(), "\xE2\x9C\x93");
  EXPECT_THROW(req.query_param("d"), keel::Error);
  EXPECT_EQ(percent_decode("%4", false), std::nullopt);
  EXPECT_EQ(percent_decode("a+b", false).value(), "a+b");
}
