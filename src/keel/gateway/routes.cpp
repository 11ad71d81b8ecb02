#include "keel/gateway/routes.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>

#include "keel/gateway/console.hpp"
#include "keel/gateway/gateway.hpp"
#include "keel/gateway/openapi.hpp"
#include "keel/http/router.hpp"
#include "keel/module/module.hpp"

namespace keel::gateway {

void declare(http::Router& router) {
  router.add(http::Method::Get, "/openapi.json", http::Access::anyone(), http::Handler());
  add_console_routes(router);
}

void install(ModuleContext& ctx) {
  std::vector<std::shared_ptr<const http::Router>> declarations;
  for (const auto& [module, routes] : ctx.declared) declarations.push_back(routes);
  auto doc = std::make_shared<const std::string>(openapi_document(KEEL_VERSION, declarations));
  ctx.router.add(http::Method::Get, "/openapi.json", http::Access::anyone(),
                 [doc](http::Request&) -> boost::asio::awaitable<http::Response> {
                   co_return http::Response::json_text(200, *doc);
                 });
  add_console_routes(ctx.router);
  auto gw = std::make_shared<Gateway>(ctx, GatewaySettings::from(ctx.config));
  // /health's report of every module, the first route table once every module of the process is in, and
  // the requests served since the last flush counted once the process has drained.
  ctx.extra_health = [gw] {
    const std::string modules = gw->table()->modules_health;
    return modules.empty() ? modules : "\"modules\":" + modules;
  };
  ctx.on_started = [gw] { gw->rebuild_sync(); };
  ctx.on_drained = [gw] { gw->flush_meter_sync(); };
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

}  // namespace keel::gateway
