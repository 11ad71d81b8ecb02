#include "keel/module/caller.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "keel/app/modules.hpp"
#include "keel/core/error.hpp"

using keel::http::Access;
using keel::http::Method;
using keel::http::Request;
using keel::module::Principal;

namespace {

// Tokens by Authorization header: "Bearer user", "Bearer admin", "Bearer service"; anything else is a 401,
// as the real verifier answers for a token it cannot verify.
class FakeAuthenticator : public keel::module::Authenticator {
 public:
  std::shared_ptr<const Principal> authenticate_shared(const Request& req) const override {
    const auto it = principals_.find(std::string(req.header("authorization")));
    if (it == principals_.end()) throw keel::Error::unauthorized();
    return it->second;
  }
  bool still_valid(const Principal&) const override { return true; }
  void reload() override {}
  void revoke_local(const std::string&, std::chrono::system_clock::time_point) override {}

 private:
  static std::shared_ptr<const Principal> make(std::string subject, std::vector<std::string> roles) {
    auto p = std::make_shared<Principal>();
    p->subject = std::move(subject);
    p->roles = std::move(roles);
    if (p->is_service())
      p->service = "billing-sync";
    else
      p->user_id = p->subject;
    return p;
  }
  std::map<std::string, std::shared_ptr<const Principal>> principals_{
      {"Bearer user", make("u1", {"user"})},
      {"Bearer admin", make("a1", {"user", "admin"})},
      {"Bearer service", make("service:billing-sync", {"service"})}};
};

struct Call {
  std::string authorization;
  Request req{this, [](const void* self, std::string_view name) -> std::string_view {
                return name == "authorization" ? static_cast<const Call*>(self)->authorization
                                               : std::string_view();
              }};
};

// The status the guard answers `token` with on a route declared `access` (200: let through).
int status_of(const keel::http::Guard& guard, Access access, const std::string& token, std::string* subject) {
  Call call{token};
  try {
    guard(call.req, access);
  } catch (const keel::Error& e) {
    EXPECT_FALSE(call.req.caller) << "a refused caller is not stored";
    return e.status();
  }
  *subject = keel::module::caller(call.req).subject;
  return 200;
}

}  // namespace

TEST(Guard, LetsThroughOnlyTheKindsARouteDeclares) {
  const FakeAuthenticator auth;
  const auto guard = keel::module::guard(auth);
  std::string who;
  EXPECT_EQ(status_of(guard, Access::user(), "", &who), 401);
  EXPECT_EQ(status_of(guard, Access::user(), "Bearer forged", &who), 401);
  EXPECT_EQ(status_of(guard, Access::user(), "Bearer user", &who), 200);
  EXPECT_EQ(who, "u1");
  EXPECT_EQ(status_of(guard, Access::user(), "Bearer admin", &who), 200);
  EXPECT_EQ(who, "a1");
  EXPECT_EQ(status_of(guard, Access::user(), "Bearer service", &who), 403);
  EXPECT_EQ(status_of(guard, Access::admin(), "Bearer user", &who), 403);
  EXPECT_EQ(status_of(guard, Access::admin(), "Bearer admin", &who), 200);
  EXPECT_EQ(status_of(guard, Access::admin(), "Bearer service", &who), 403);
  EXPECT_EQ(status_of(guard, Access::service(), "Bearer admin", &who), 403);
  EXPECT_EQ(status_of(guard, Access::service(), "Bearer service", &who), 200);
  EXPECT_EQ(who, "service:billing-sync");
  EXPECT_EQ(status_of(guard, Access::admin() | Access::service(), "Bearer user", &who), 403);
  EXPECT_EQ(status_of(guard, Access::admin() | Access::service(), "Bearer service", &who), 200);
}

// A handler asking for its caller on a route that checked none is a bug in the route's declaration: it fails
// loudly rather than running as nobody.
TEST(Guard, NoCallerOnARouteThatCheckedNone) {
  Call call;
  EXPECT_THROW(keel::module::caller(call.req), std::logic_error);
}

// Every route of every keel module declares who may call it, and these are the only public ones: making a
// route public is a decision this list records.
TEST(Guard, ThePublicRoutesAreTheseAndNoOthers) {
  std::set<std::string> open;
  size_t routes = 0;
  for (const auto& [module, router] : keel::declared_routes())
    for (const auto& route : router->routes()) {
      ++routes;
      if (route->access.is_public())
        open.insert(module + " " + std::string(keel::http::method_name(route->method)) + " " +
                    route->pattern);
    }
  EXPECT_GE(routes, 33u);
  std::set<std::string> expected{
      "gateway GET /openapi.json", "auth POST /v1/auth/register",
      // The console's pages: static, what they show comes from admin API calls.
      "gateway GET /admin", "gateway GET /admin/{file}", "auth POST /v1/auth/login",
      "auth POST /v1/auth/refresh", "auth GET /.well-known/jwks.json",
      "auth GET /.well-known/openid-configuration",
      // Whether any admin exists: the console's sign-in page explains how to create the first.
      "auth GET /v1/auth/setup",
      // Public at the router only: its handler takes a Bearer token or a single-use stream ticket.
      "events GET /v1/stream"};
  for (const char* m : {"gateway", "auth", "memory", "registry", "billing", "events"})
    for (const char* p : {"/health", "/health/live", "/metrics"})
      expected.insert(std::string(m) + " GET " + p);
  EXPECT_EQ(open, expected);
}
