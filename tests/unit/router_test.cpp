#include "keel/http/router.hpp"

#include <gtest/gtest.h>

using namespace keel::http;

namespace {
Handler noop() {
  return [](Request&) -> boost::asio::awaitable<Response> { co_return Response::no_content(); };
}
}  // namespace

TEST(Router, MatchesLiteralAndParams) {
  Router r;
  r.add(Method::Get, "/v1/memories", noop());
  r.add(Method::Get, "/v1/memories/{id}", noop());
  r.add(Method::Post, "/v1/memories/search", noop());

  auto m = r.match(Method::Get, "/v1/memories/abc%20def");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/v1/memories/{id}");
  ASSERT_EQ(m.params.size(), 1u);
  EXPECT_EQ(m.params[0].first, "id");
  EXPECT_EQ(m.params[0].second, "abc def");

  m = r.match(Method::Post, "/v1/memories/search");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/v1/memories/search");

  m = r.match(Method::Get, "/v1/memories");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->pattern, "/v1/memories");
}

TEST(Router, LiteralSegmentsBeatParametersForTheSameMethod) {
  Router r;
  r.add(Method::Get, "/v1/things/{id}", noop());
  r.add(Method::Get, "/v1/things/special", noop());
  EXPECT_EQ(r.match(Method::Get, "/v1/things/special").route->pattern, "/v1/things/special");
  EXPECT_EQ(r.match(Method::Get, "/v1/things/other").route->pattern, "/v1/things/{id}");
}

TEST(Router, UnknownPathHasNoRouteAndNoAllowedMethods) {
  Router r;
  r.add(Method::Get, "/health", noop());
  auto m = r.match(Method::Get, "/nope");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.allowed.empty());
  EXPECT_EQ(r.match(Method::Get, "/health/extra").route, nullptr);
}

TEST(Router, WrongMethodListsAllowedMethods) {
  Router r;
  r.add(Method::Get, "/v1/things/{id}", noop());
  r.add(Method::Delete, "/v1/things/{id}", noop());
  auto m = r.match(Method::Post, "/v1/things/1");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(allow_header(m.allowed), "GET, HEAD, DELETE");
}

TEST(Router, HeadFallsBackToGet) {
  Router r;
  r.add(Method::Get, "/health", noop());
  auto m = r.match(Method::Head, "/health");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->method, Method::Get);
}

TEST(Router, LongestPrefixWinsAndExactRoutesBeatPrefixes) {
  Router r;
  r.add_prefix(Method::Get, "/v1/ext", noop());
  r.add_prefix(Method::Get, "/v1/ext/deep", noop());
  r.add(Method::Get, "/v1/ext/deep/exact", noop());
  EXPECT_EQ(r.match(Method::Get, "/v1/ext/a/b").route->pattern, "/v1/ext/*");
  EXPECT_EQ(r.match(Method::Get, "/v1/ext/deep/x").route->pattern, "/v1/ext/deep/*");
  EXPECT_EQ(r.match(Method::Get, "/v1/ext/deep/exact").route->pattern, "/v1/ext/deep/exact");
  EXPECT_EQ(r.match(Method::Get, "/v1/other").route, nullptr);
}

TEST(Router, ACatchAllPrefixKeeps405ForKnownPaths) {
  Router r;
  r.add(Method::Get, "/health", noop());
  r.add_prefix(Method::Delete, "/", noop());
  r.add_prefix(Method::Get, "/", noop());
  r.add_prefix(Method::Post, "/", noop());
  auto m = r.match(Method::Delete, "/health");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(allow_header(m.allowed), "GET, HEAD");
  EXPECT_EQ(r.match(Method::Delete, "/elsewhere").route->pattern, "/*");
}
