#include "keel/http/router.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "keel/core/error.hpp"

using namespace keel::http;

namespace {
Handler noop() {
  return [](Request&) -> boost::asio::awaitable<Response> { co_return Response::no_content(); };
}
}  // namespace

TEST(Router, MatchesLiteralAndParams) {
  Router r;
  r.add(Method::Get, "/v1/memories", Access::anyone(), noop());
  r.add(Method::Get, "/v1/memories/{id}", Access::anyone(), noop());
  r.add(Method::Post, "/v1/memories/search", Access::anyone(), noop());

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
  r.add(Method::Get, "/v1/things/{id}", Access::anyone(), noop());
  r.add(Method::Get, "/v1/things/special", Access::anyone(), noop());
  EXPECT_EQ(r.match(Method::Get, "/v1/things/special").route->pattern, "/v1/things/special");
  EXPECT_EQ(r.match(Method::Get, "/v1/things/other").route->pattern, "/v1/things/{id}");
}

TEST(Router, UnknownPathHasNoRouteAndNoAllowedMethods) {
  Router r;
  r.add(Method::Get, "/health", Access::anyone(), noop());
  auto m = r.match(Method::Get, "/nope");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_TRUE(m.allowed.empty());
  EXPECT_EQ(r.match(Method::Get, "/health/extra").route, nullptr);
}

TEST(Router, WrongMethodListsAllowedMethods) {
  Router r;
  r.add(Method::Get, "/v1/things/{id}", Access::anyone(), noop());
  r.add(Method::Delete, "/v1/things/{id}", Access::anyone(), noop());
  auto m = r.match(Method::Post, "/v1/things/1");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(allow_header(m.allowed), "GET, HEAD, DELETE");
}

TEST(Router, HeadFallsBackToGet) {
  Router r;
  r.add(Method::Get, "/health", Access::anyone(), noop());
  auto m = r.match(Method::Head, "/health");
  ASSERT_NE(m.route, nullptr);
  EXPECT_EQ(m.route->method, Method::Get);
}

TEST(Router, LongestPrefixWinsAndExactRoutesBeatPrefixes) {
  Router r;
  r.add_prefix(Method::Get, "/v1/ext", Access::anyone(), noop());
  r.add_prefix(Method::Get, "/v1/ext/deep", Access::anyone(), noop());
  r.add(Method::Get, "/v1/ext/deep/exact", Access::anyone(), noop());
  EXPECT_EQ(r.match(Method::Get, "/v1/ext/a/b").route->pattern, "/v1/ext/*");
  EXPECT_EQ(r.match(Method::Get, "/v1/ext/deep/x").route->pattern, "/v1/ext/deep/*");
  EXPECT_EQ(r.match(Method::Get, "/v1/ext/deep/exact").route->pattern, "/v1/ext/deep/exact");
  EXPECT_EQ(r.match(Method::Get, "/v1/other").route, nullptr);
}

TEST(Router, ACatchAllPrefixKeeps405ForKnownPaths) {
  Router r;
  r.add(Method::Get, "/health", Access::anyone(), noop());
  r.add_prefix(Method::Delete, "/", Access::anyone(), noop());
  r.add_prefix(Method::Get, "/", Access::anyone(), noop());
  r.add_prefix(Method::Post, "/", Access::anyone(), noop());
  auto m = r.match(Method::Delete, "/health");
  EXPECT_EQ(m.route, nullptr);
  EXPECT_EQ(allow_header(m.allowed), "GET, HEAD");
  EXPECT_EQ(r.match(Method::Delete, "/elsewhere").route->pattern, "/*");
}

namespace {
std::string_view no_header(const void*, std::string_view) { return {}; }
}  // namespace

// A route that is not public is never served unchecked: without a guard it is a 401, with one the guard sees
// the route's declared access before the handler runs; public routes skip the guard.
TEST(Router, DeclaredAccessIsCheckedBeforeTheHandler) {
  Router r;
  r.add(Method::Get, "/v1/open", Access::anyone(), noop());
  r.add(Method::Get, "/v1/mine", Access::user(), noop());
  r.add(Method::Post, "/v1/admin", Access::admin() | Access::service(), noop());
  Request req(nullptr, no_header);
  const std::string* label = nullptr;
  req.method = Method::Get;
  req.path = "/v1/mine";
  try {
    (void)r.dispatch(req, label);
    ADD_FAILURE() << "served without a guard";
  } catch (const keel::Error& e) {
    EXPECT_EQ(e.status(), 401);
  }
  // A guard that refuses stops the handler from starting.
  bool ran = false;
  Router guarded;
  guarded.add(Method::Get, "/v1/mine", Access::user(), [&](Request&) -> boost::asio::awaitable<Response> {
    ran = true;
    co_return Response::no_content();
  });
  guarded.set_guard([](Request&, Access) { throw keel::Error::forbidden(); });
  EXPECT_THROW((void)guarded.dispatch(req, label), keel::Error);
  guarded.set_guard([](Request&, Access) {});
  boost::asio::io_context io;
  boost::asio::co_spawn(io, guarded.dispatch(req, label), boost::asio::detached);
  io.run();
  EXPECT_TRUE(ran);
  std::vector<std::pair<std::string, Access>> seen;
  r.set_guard([&](Request& q, Access a) { seen.emplace_back(std::string(q.path), a); });
  (void)r.dispatch(req, label);
  req.method = Method::Post;
  req.path = "/v1/admin";
  (void)r.dispatch(req, label);
  req.method = Method::Get;
  req.path = "/v1/open";
  (void)r.dispatch(req, label);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(std::string("/v1/mine"), Access::user()));
  EXPECT_EQ(seen[1], std::make_pair(std::string("/v1/admin"), Access::admin() | Access::service()));
}

// The gateway skips its edge check where this says so: a public route, or a path only public routes serve
// (another method there is the module's 405, not the edge's 401).
TEST(Router, IsPublicFollowsTheDeclarations) {
  Router r;
  r.add(Method::Post, "/v1/auth/login", Access::anyone(), noop());
  r.add(Method::Get, "/v1/auth/me", Access::user(), noop());
  r.add(Method::Get, "/v1/things/{id}", Access::user(), noop());
  EXPECT_TRUE(r.is_public(Method::Post, "/v1/auth/login"));
  EXPECT_TRUE(r.is_public(Method::Get, "/v1/auth/login"));
  EXPECT_FALSE(r.is_public(Method::Get, "/v1/auth/login", false));  // that method exactly
  EXPECT_FALSE(r.is_public(Method::Get, "/v1/auth/me"));
  EXPECT_FALSE(r.is_public(Method::Delete, "/v1/auth/me"));
  EXPECT_FALSE(r.is_public(Method::Get, "/v1/things/1"));
  EXPECT_FALSE(r.is_public(Method::Get, "/v1/unknown"));
}

TEST(Access, AdmitsTheKindsItNames) {
  EXPECT_TRUE(Access::anyone().admits(false, false));
  EXPECT_TRUE(Access::user().admits(false, false));
  EXPECT_TRUE(Access::user().admits(false, true));  // an admin is a user
  EXPECT_FALSE(Access::user().admits(true, false));
  EXPECT_FALSE(Access::admin().admits(false, false));
  EXPECT_TRUE(Access::admin().admits(false, true));
  EXPECT_FALSE(Access::admin().admits(true, false));
  EXPECT_TRUE(Access::service().admits(true, false));
  EXPECT_FALSE(Access::service().admits(false, true));
  EXPECT_TRUE((Access::admin() | Access::service()).admits(true, false));
  EXPECT_FALSE((Access::admin() | Access::service()).admits(false, false));
  EXPECT_EQ((Access::admin() | Access::service()).what_is_needed(), "the admin role or a service token");
}
