#include "keel/gateway/openapi.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>

#include "keel/app/modules.hpp"

namespace {
std::vector<std::shared_ptr<const keel::http::Router>> every_declaration() {
  std::vector<std::shared_ptr<const keel::http::Router>> out;
  for (const auto& [module, routes] : keel::declared_routes()) out.push_back(routes);
  return out;
}
}  // namespace

TEST(OpenApi, EveryFragmentParsesAndTheDocumentHasTheAuthPaths) {
  for (const auto& [module, text] : keel::gateway::openapi_fragments()) {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    ASSERT_FALSE(ec) << module << ": " << ec.message();
    EXPECT_TRUE(v.as_object().contains("paths")) << module;
  }
  auto doc = boost::json::parse(keel::gateway::openapi_document("test", every_declaration()));
  EXPECT_EQ(doc.at("openapi").as_string(), "3.1.0");
  const auto& paths = doc.at("paths").as_object();
  for (const char* p :
       {"/v1/auth/register", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout", "/v1/auth/logout-all",
        "/v1/auth/me", "/v1/auth/password", "/v1/auth/sessions", "/v1/auth/sessions/{id}", "/v1/auth/users",
        "/.well-known/jwks.json", "/.well-known/openid-configuration", "/health", "/openapi.json"})
    EXPECT_TRUE(paths.contains(p)) << p;
  // Every $ref points at something the document defines.
  const std::string text = keel::gateway::openapi_document("test", every_declaration());
  const auto& components = doc.at("components").as_object();
  for (size_t pos = 0; (pos = text.find("\"$ref\":\"#/components/", pos)) != std::string::npos;) {
    pos += std::string("\"$ref\":\"#/components/").size();
    const auto slash = text.find('/', pos);
    const auto quote = text.find('"', slash);
    const std::string kind = text.substr(pos, slash - pos), name = text.substr(slash + 1, quote - slash - 1);
    ASSERT_TRUE(components.contains(kind)) << kind;
    EXPECT_TRUE(components.at(kind).as_object().contains(name)) << kind << "/" << name;
  }
}

TEST(OpenApi, RoutesServedButNotListedAreFound) {
  keel::http::Router router;
  auto none = [](keel::http::Request&) -> boost::asio::awaitable<keel::http::Response> {
    co_return keel::http::Response{};
  };
  router.add(keel::http::Method::Get, "/v1/memories/{id}", keel::http::Access::anyone(), none);  // listed
  router.add(keel::http::Method::Put, "/v1/memories/{id}", keel::http::Access::anyone(),
             none);  // that path, not that method
  router.add(keel::http::Method::Get, "/v1/memories/{id}/secret", keel::http::Access::anyone(),
             none);  // not listed at all
  router.add_prefix(keel::http::Method::Get, "/v1/ext", keel::http::Access::anyone(),
                    none);  // a proxy's subtree: left out
  EXPECT_EQ(keel::gateway::undocumented_routes(router),
            (std::vector<std::string>{"PUT /v1/memories/{id}", "GET /v1/memories/{id}/secret"}));
}

// `security` comes from each route's declared access: none on the public routes, bearer on the others.
TEST(OpenApi, SecurityComesFromTheRoutesDeclarations) {
  const auto doc = boost::json::parse(keel::gateway::openapi_document("test", every_declaration()));
  std::set<std::string> open, bearer;
  for (const auto& [path, ops] : doc.at("paths").as_object())
    for (const auto& [method, op] : ops.as_object()) {
      if (!op.is_object()) continue;  // a path item's own "parameters"
      const auto& security = op.at("security").as_array();
      (security.empty() ? open : bearer).insert(std::string(method) + " " + std::string(path));
    }
  EXPECT_EQ(open,
            (std::set<std::string>{"post /v1/auth/register", "post /v1/auth/login", "post /v1/auth/refresh",
                                   "get /.well-known/jwks.json", "get /.well-known/openid-configuration",
                                   "get /health", "get /health/live", "get /metrics", "get /openapi.json",
                                   // The console's pages (what they show needs an admin's token).
                                   "get /admin", "get /admin/{file}",
                                   // Whether an admin exists, for the console's sign-in page.
                                   "get /v1/auth/setup"}));
  for (const char* op : {"get /v1/auth/me", "post /v1/memories", "post /v1/memories/search", "get /v1/events",
                         "post /v1/billing/usage", "put /v1/registry/modules/{name}/instances/{instance_id}"})
    EXPECT_TRUE(bearer.contains(op)) << op;
}

// An operation in a module's fragment that no route declares is an error, not an operation without
// `security`.
TEST(OpenApi, AnOperationNoRouteDeclaresIsRefused) {
  auto partial = every_declaration();
  partial.pop_back();  // one module's routes missing
  EXPECT_THROW(keel::gateway::openapi_document("test", partial), std::logic_error);
}
