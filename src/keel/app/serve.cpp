#include "keel/app/serve.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <iostream>
#include <thread>

#include "keel/app/health.hpp"
#include "keel/app/modules.hpp"
#include "keel/auth/settings.hpp"
#include "keel/auth/verifier.hpp"
#include "keel/core/log.hpp"
#include "keel/db/database.hpp"
#include "keel/db/migrations.hpp"
#include "keel/http/server.hpp"

namespace keel {

namespace {

boost::json::array to_json(const std::vector<std::string>& v) {
  boost::json::array a;
  for (const auto& s : v) a.emplace_back(s);
  return a;
}

std::unique_ptr<db::Database> open_and_migrate(const Config& config) {
  auto db = db::open_database(config);
  log::info("database opened", {{"backend", db->dialect() == db::Dialect::Sqlite ? "sqlite" : "postgresql"},
                                {"location", db->describe()}});
  const auto report = db::migrate(*db);
  if (!report.applied.empty())
    log::info("migrations applied", {{"applied", to_json(report.applied)}, {"version", report.version}});
  return db;
}

auth::VerifierSettings verifier_settings(const Config& config) {
  const auto a = auth::AuthSettings::from(config);
  return {a.issuer, a.audience, a.access_ttl_seconds, 30};
}

// In-process dispatch: the gateway serves the routes of every module running in this process by calling
// their handlers directly (same contract, no loopback hop). Modules elsewhere are the gateway's to proxy.
void mount_in_gateway(
    const std::vector<std::pair<const ModuleSpec*, std::shared_ptr<http::Router>>>& routers) {
  std::shared_ptr<http::Router> gateway;
  for (const auto& [m, r] : routers)
    if (m->name == "gateway") gateway = r;
  if (!gateway) return;
  for (const auto& [m, r] : routers) {
    if (r == gateway) continue;
    for (const auto& route : r->routes())
      if (route->pattern.rfind("/v1/", 0) == 0 || route->pattern.rfind("/.well-known/", 0) == 0)
        gateway->add(route->method, route->pattern, route->handler, route->options);
  }
}

}  // namespace

int serve(const Config& config) {
  const auto modules = select_modules(config.services);
  const auto started = std::chrono::steady_clock::now();
  auto db = open_and_migrate(config);

  http::ServerOptions opt;
  opt.listen = config.listen;
  opt.io_threads = config.io_threads > 0
                       ? config.io_threads
                       : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  opt.body_limit = config.body_limit;
  opt.header_timeout = config.header_timeout;
  opt.body_timeout = config.body_timeout;
  opt.max_connections = config.max_connections;
  opt.access_log = config.access_log;
  opt.shutdown_grace = config.shutdown_grace;
  http::Server server(opt);

  HealthProbe probe(*db);
  probe.probe_sync();
  auth::TokenVerifier verifier(*db, verifier_settings(config));

  std::vector<std::string> names;
  std::vector<std::pair<const ModuleSpec*, std::shared_ptr<http::Router>>> routers;
  for (const ModuleSpec* m : modules) {
    auto router = std::make_shared<http::Router>();
    auto metrics = std::make_shared<http::HttpMetrics>(std::string(m->name));
    ModuleContext ctx{config, *db, *router, server.main_context(), verifier};
    if (m->install) m->install(ctx);
    routers.emplace_back(m, router);
    add_common_routes(*router, CommonRoutes{std::string(m->name), &probe, [metrics, &server] {
                                              std::string out;
                                              metrics->render(out);
                                              http::render_process_metrics(out, server.open_connections());
                                              return out;
                                            }});
    const uint16_t port = server.listen(
        std::string(m->name), static_cast<uint16_t>(config.port_base + m->port_offset), router, metrics);
    names.emplace_back(std::string(m->name) + ":" + std::to_string(port));
  }

  mount_in_gateway(routers);
  verifier.load_sync();
  boost::asio::co_spawn(server.main_context(), probe.run(std::chrono::seconds(1)), boost::asio::detached);
  boost::asio::co_spawn(server.main_context(), verifier.run(), boost::asio::detached);
  boost::asio::signal_set signals(server.main_context(), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("shutting down", {{"signal", sig}});
    server.shutdown();
  });

  const double startup_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log::info("keel serving", {{"version", KEEL_VERSION},
                             {"modules", to_json(names)},
                             {"listen", config.listen},
                             {"io_threads", opt.io_threads},
                             {"data_dir", config.data_dir.string()},
                             {"config", config.config_file.string()},
                             {"startup_ms", startup_ms}});
  server.run();
  db->close();
  log::info("keel stopped");
  return 0;
}

int migrate_command(const Config& config) {
  auto db = db::open_database(config);
  const auto report = db::migrate(*db);
  for (const auto& name : report.applied) std::cout << "applied " << name << "\n";
  std::cout << "schema version " << report.version << " (" << db->describe() << ")\n";
  db->close();
  return 0;
}

}  // namespace keel
