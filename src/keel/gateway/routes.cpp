#include "keel/gateway/routes.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>

#include "keel/app/modules.hpp"
#include "keel/gateway/gateway.hpp"
#include "keel/gateway/openapi.hpp"
#include "keel/http/router.hpp"

namespace keel::gateway {

namespace {
std::shared_ptr<Gateway> g_gateway;  // the process's gateway, for the /health modules report
}

void declare(http::Router& router) {
  router.add(http::Method::Get, "/openapi.json", http::Access::anyone(), http::Handler());
}

void install(ModuleContext& ctx) {
  std::vector<std::shared_ptr<const http::Router>> declarations;
  for (const auto& [module, routes] : ctx.declared) declarations.push_back(routes);
  auto doc = std::make_shared<const std::string>(openapi_document(KEEL_VERSION, declarations));
  ctx.router.add(http::Method::Get, "/openapi.json", http::Access::anyone(),
                 [doc](http::Request&) -> boost::asio::awaitable<http::Response> {
                   co_return http::Response::json_text(200, *doc);
                 });
  auto gw = std::make_shared<Gateway>(ctx, GatewaySettings::from(ctx.config));
  g_gateway = gw;
  boost::asio::co_spawn(ctx.io, gw->follow(), boost::asio::detached);
  boost::asio::co_spawn(ctx.io, gw->meter_loop(), boost::asio::detached);
  if (gw->budgets()) boost::asio::co_spawn(ctx.io, gw->budgets()->run(), boost::asio::detached);
  // Everything else: routed by prefix to the owning module (bodies pass through as they are).
  for (auto m : {http::Method::Get, http::Method::Head, http::Method::Post, http::Method::Put,
                 http::Method::Patch, http::Method::Delete, http::Method::Options})
    ctx.router.add_prefix(
        // The gateway checks tokens itself, per the route it forwards to (Gateway::handle).
        m, "/", http::Access::anyone(),
        [gw](http::Request& req) -> boost::asio::awaitable<http::Response> { return gw->handle(req); },
        http::RouteOptions{.raw_body = true});
}

std::string modules_health() {
  if (!g_gateway) return {};
  return g_gateway->table()->modules_health;
}

void flush_metering() {
  if (g_gateway) g_gateway->flush_meter_sync();
}

void rebuild_routes() {
  if (g_gateway) g_gateway->rebuild_sync();
}

}  // namespace keel::gateway
