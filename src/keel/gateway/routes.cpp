#include "keel/gateway/routes.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <memory>

#include "keel/core/settings.hpp"
#include "keel/gateway/console.hpp"
#include "keel/gateway/gateway.hpp"
#include "keel/gateway/openapi.hpp"
#include "keel/http/metrics.hpp"
#include "keel/http/router.hpp"
#include "keel/module/module.hpp"

namespace keel::gateway {

namespace {
namespace json = boost::json;

// The admin console's own reads (an admin's token): the traffic this gateway routed, second by second, and
// the process's effective configuration. `metrics` is null when the routes are only declared.
void add_admin_routes(http::Router& router, const http::HttpMetrics* metrics,
                      std::shared_ptr<const std::string> config) {
  router.add(http::Method::Get, "/v1/gateway/traffic", http::Access::admin(),
             [metrics](http::Request& req) -> boost::asio::awaitable<http::Response> {
               const auto span = req.query_int("seconds", 1, 119).value_or(60);
               json::object modules;
               for (const auto& [module, seconds] : metrics->recent(static_cast<size_t>(span))) {
                 json::array series;
                 for (const auto& s : seconds)
                   series.push_back(json::object{{"at", s.at},
                                                 {"requests", s.requests},
                                                 {"errors", s.errors},
                                                 {"p50_ms", s.p50 * 1000},
                                                 {"p99_ms", s.p99 * 1000}});
                 modules[module] = std::move(series);
               }
               co_return http::Response::json(200, json::object{{"seconds", span}, {"modules", modules}});
             });
  router.add(http::Method::Get, "/v1/gateway/config", http::Access::admin(),
             [config](http::Request&) -> boost::asio::awaitable<http::Response> {
               co_return http::Response::json(200, json::object{{"toml", *config}});
             });
}
}  // namespace

void declare(http::Router& router) {
  router.add(http::Method::Get, "/openapi.json", http::Access::anyone(), http::Handler());
  add_console_routes(router);
  add_admin_routes(router, nullptr, nullptr);
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
  add_admin_routes(
      ctx.router, &ctx.metrics,
      std::make_shared<const std::string>(effective_config(ctx.config, module::setting_tables(ctx.modules))));
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
