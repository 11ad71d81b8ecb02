#include "keel/gateway/console.hpp"

#include "keel/core/error.hpp"
#include "keel/http/router.hpp"

namespace keel::gateway {

namespace {

// No inline script or style, nothing from elsewhere, no framing (clickjacking), no forms posted elsewhere.
constexpr std::string_view kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

http::Response page(const ConsoleAsset& asset) {
  http::Response res = http::Response::text(200, std::string(asset.body), std::string(asset.content_type));
  res.headers.emplace_back("Content-Security-Policy", std::string(kPolicy));
  res.headers.emplace_back("X-Frame-Options", "DENY");
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("Referrer-Policy", "no-referrer");
  res.headers.emplace_back("Cache-Control", "no-cache");  // a new keel's console replaces the old at once
  return res;
}

const ConsoleAsset* find(std::string_view name) {
  for (const auto& a : console_assets())
    if (a.name == name) return &a;
  return nullptr;
}

}  // namespace

void add_console_routes(http::Router& router) {
  using http::Access;
  using http::Method;
  // "/admin" and "/admin/" alike (the router matches a path with or without its trailing slash).
  router.add(
      Method::Get, "/admin", Access::anyone(),
      [](http::Request&) -> boost::asio::awaitable<http::Response> { co_return page(*find("index.html")); });
  router.add(Method::Get, "/admin/{file}", Access::anyone(),
             [](http::Request& req) -> boost::asio::awaitable<http::Response> {
               const ConsoleAsset* asset = find(req.param("file"));
               if (!asset) throw Error::not_found("no such page of the console");
               co_return page(*asset);
             });
}

}  // namespace keel::gateway
