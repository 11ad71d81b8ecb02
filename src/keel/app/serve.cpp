#include "keel/app/serve.hpp"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <csignal>
#include <functional>
#include <iostream>
#include <thread>

#include "keel/app/health.hpp"
#include "keel/app/modules.hpp"
#include "keel/app/wiring.hpp"
#include "keel/auth/settings.hpp"
#include "keel/auth/verifier.hpp"
#include "keel/core/config.hpp"
#include "keel/core/log.hpp"
#include "keel/db/database.hpp"
#include "keel/db/migrations.hpp"
#include "keel/events/sequencer.hpp"
#include "keel/gateway/gateway.hpp"
#include "keel/gateway/openapi.hpp"
#include "keel/gateway/routes.hpp"
#include "keel/http/fast/fast_paths.hpp"
#include "keel/http/router.hpp"
#include "keel/http/server.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/idempotency.hpp"
#include "keel/registry/index_watch.hpp"
#include "keel/registry/repository.hpp"
#include "keel/registry/settings.hpp"

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

// How this process's own instances are registered: a short TTL renewed often, and a health path the
// registry checks every second, so a host that dies is out of every gateway's routing within about a second
// (a failed check) or the TTL (no heartbeat), whichever comes first.
struct SelfRegistration {
  int64_t ttl_seconds = 5;
  std::chrono::milliseconds heartbeat{1000};
  static SelfRegistration from(const Config& c) {
    SelfRegistration s;
    s.ttl_seconds = registry::settings::self_ttl_seconds.integer(c);
    s.heartbeat = std::chrono::milliseconds(registry::settings::self_heartbeat_ms.integer(c));
    if (s.heartbeat.count() > s.ttl_seconds * 1000 / 2)
      throw ConfigError("[registry] self_heartbeat_ms: at most half of self_ttl_seconds (" +
                        std::to_string(s.ttl_seconds * 1000 / 2) + " ms), got " +
                        std::to_string(s.heartbeat.count()));
    return s;
  }
};

// The address other processes reach this one at: [registry] advertise, else the listen address (or the host
// name when listening on every interface).
std::string advertised_host(const Config& config) {
  if (std::string host = registry::settings::advertise.text(config); !host.empty()) return host;
  if (config.listen != "0.0.0.0" && config.listen != "::") return config.listen;
  char name[256] = {};
  return gethostname(name, sizeof name - 1) == 0 ? std::string(name) : std::string("127.0.0.1");
}

// Renews this process's registrations (named function: coroutine lambdas must not capture, STYLE.md).
boost::asio::awaitable<void> heartbeat_own(db::Database& db, const module::Outbox& outbox,
                                           const std::vector<registry::InstanceInput>& own,
                                           const std::atomic<bool>& stopping,
                                           std::chrono::milliseconds every) {
  const auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(ex);
  for (;;) {
    timer.expires_after(every);
    co_await timer.async_wait(boost::asio::use_awaitable);
    try {
      co_await db.write([&](db::Session& s) {
        if (stopping.load()) return;  // queued before shutdown: must not re-register what shutdown removed
        for (const auto& self : own)
          if (!registry::heartbeat(s, self.module, self.instance_id))
            registry::upsert_instance(s, outbox, self, "");
      });
    } catch (const std::exception& e) {
      log::warn("registry heartbeat failed", {{"error", e.what()}});
    }
  }
}

// Rows that only matter for a while: idempotent answers past their 24 h. Once a minute.
boost::asio::awaitable<void> housekeeping(db::Database& db) {
  const auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(ex);
  for (;;) {
    timer.expires_after(std::chrono::minutes(1));
    co_await timer.async_wait(boost::asio::use_awaitable);
    try {
      co_await db.write([](db::Session& s) { module::forget_idempotent_answers(s); });
    } catch (const std::exception& e) {
      log::warn("housekeeping failed", {{"error", e.what()}});
    }
  }
}

// Every 10 s, memory the allocator holds free goes back to the system. In a soak, memory in use stayed flat
// (5.8 -> 6.1 MB over two minutes) while glibc's sixteen arenas grew with what they had freed (9.0 -> 15.4 MB
// held), so RSS climbed for minutes before it levelled off; trimmed, RSS follows what is in use.
boost::asio::awaitable<void> return_free_memory() {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  for (;;) {
    timer.expires_after(std::chrono::seconds(10));
    co_await timer.async_wait(boost::asio::use_awaitable);
    malloc_trim(0);
  }
}

auth::VerifierSettings verifier_settings(const Config& config) {
  const auto a = auth::AuthSettings::from(config);
  return {a.issuer, a.audience, a.access_ttl_seconds, 30};
}

}  // namespace

int serve(const Config& config) {
  const auto modules = select_modules(config.services);
  // Every module's settings were checked against their declarations (main); what depends on more than one
  // value, or parses one further, is checked here, before anything opens, so a bad value is the only output.
  (void)auth::AuthSettings::from(config);
  (void)gateway::GatewaySettings::from(config);
  (void)http::AddressPolicy::from(config);
  Wiring wiring(config);  // reads the plans ([billing]) too
  const SelfRegistration self_registration = SelfRegistration::from(config);
  const auto started = std::chrono::steady_clock::now();
  auto db = open_and_migrate(config);
  // On PostgreSQL every process numbers committed events (events/sequencer.hpp): its own at once, other
  // processes' left behind (one that died) within half a second, or at once for a reader catching up.
  std::unique_ptr<events::Sequencer> sequencer;
  if (db->dialect() == db::Dialect::Postgres) {
    sequencer = std::make_unique<events::Sequencer>(*db, std::chrono::milliseconds(500));
    wiring.outbox.number_with(sequencer.get());
  }

  http::ServerOptions opt;
  opt.listen = config.listen;
  opt.io_threads = config.io_threads > 0
                       ? config.io_threads
                       : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  opt.body_limit = config.body_limit;
  opt.header_timeout = config.header_timeout;
  opt.body_timeout = config.body_timeout;
  opt.max_connections = config.max_connections;
  opt.max_connections_per_ip = config.max_connections_per_ip;
  opt.per_ip_modules = {"gateway"};
  opt.access_log = config.access_log;
  opt.shutdown_grace = config.shutdown_grace;
  http::Server server(opt);

  HealthProbe probe(*db);
  probe.probe_sync();
  // The module layer's interfaces that need the database: auth's verifier, the registry's view.
  auth::TokenVerifier verifier(*db, verifier_settings(config));
  registry::IndexWatch registry_index(*db);
  registry_index.load_sync();

  std::vector<std::string> names;
  std::vector<std::pair<std::string, std::shared_ptr<http::Router>>> local_routers;
  std::vector<registry::InstanceInput> own_instances;
  // ModuleContext::on_started, on_stopping, on_drained
  std::vector<std::function<void()>> started_hooks, stopping_hooks, drained_hooks;
  const std::string host = advertised_host(config);
  for (const ModuleSpec* m : modules) {
    auto router = std::make_shared<http::Router>();
    router->set_guard(module::guard(verifier));  // each route's declared access, checked before its handler
    auto metrics = std::make_shared<http::HttpMetrics>(std::string(m->name));
    ModuleContext ctx{.config = config,
                      .db = *db,
                      .router = *router,
                      .metrics = *metrics,
                      .io = server.main_context(),
                      .authenticator = verifier,
                      .registry = registry_index,
                      .accounts = wiring.ledger,
                      .outbox = wiring.outbox,
                      .hooks = wiring.hooks,
                      .modules = module_table(),
                      .local_routers = local_routers,
                      .declared = declared_routes()};
    if (m->install) m->install(ctx);
    local_routers.emplace_back(std::string(m->name), router);
    CommonRoutes common{std::string(m->name), &probe, [metrics, &server, extra = ctx.extra_metrics] {
                          std::string out;
                          metrics->render(out);
                          if (extra) extra(out);
                          http::render_process_metrics(out, server.open_connections());
                          return out;
                        }};
    common.extra = ctx.extra_health;
    if (ctx.on_started) started_hooks.push_back(ctx.on_started);
    if (ctx.on_stopping) stopping_hooks.push_back(ctx.on_stopping);
    if (ctx.on_drained) drained_hooks.push_back(ctx.on_drained);
    add_common_routes(*router, common);
    for (const auto& route : gateway::undocumented_routes(*router))
      log::error("route missing from /openapi.json", {{"module", std::string(m->name)}, {"route", route}});
    const uint16_t port = server.listen(
        std::string(m->name), static_cast<uint16_t>(config.port_base + m->port_offset), router, metrics);
    names.emplace_back(std::string(m->name) + ":" + std::to_string(port));
    registry::InstanceInput self;
    self.module = std::string(m->name);
    self.instance_id = host + "-" + std::to_string(port);
    for (auto& ch : self.instance_id)  // instance ids match [A-Za-z0-9._-]
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '_' && ch != '-') ch = '-';
    self.url = "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
               std::to_string(port);
    self.version = KEEL_VERSION;
    self.routes = m->routes;
    // The module's public routes, so that gateways elsewhere (a keel of another version, too) let them
    // through without a token.
    for (const auto& route : router->routes())
      if (route->access.is_public() && !route->prefix &&
          std::any_of(m->routes.begin(), m->routes.end(),
                      [&](const std::string& prefix) { return module::path_under(route->pattern, prefix); }))
        self.public_routes.push_back(std::string(http::method_name(route->method)) + " " + route->pattern);
    self.health_path = "/health/live";
    self.ttl_seconds = self_registration.ttl_seconds;
    own_instances.push_back(std::move(self));
  }

  // keel's own modules register themselves, so gateways in other processes find them.
  registry_index.observe(db->write_sync([&](db::Session& s) {
    for (const auto& self : own_instances) registry::upsert_instance(s, wiring.outbox, self, "");
    return registry::current_index(s);
  }));
  for (const auto& hook : started_hooks) hook();  // the gateway's first route table, with every module in
  verifier.load_sync();
  boost::asio::co_spawn(server.main_context(), registry_index.run(), boost::asio::detached);
  if (sequencer) boost::asio::co_spawn(server.main_context(), sequencer->run(), boost::asio::detached);
  std::atomic<bool> stopping{false};
  boost::asio::co_spawn(
      server.main_context(),
      heartbeat_own(*db, wiring.outbox, own_instances, stopping, self_registration.heartbeat),
      boost::asio::detached);
  boost::asio::co_spawn(server.main_context(), probe.run(std::chrono::milliseconds(500)),
                        boost::asio::detached);
  boost::asio::co_spawn(server.main_context(), verifier.run(), boost::asio::detached);
  boost::asio::co_spawn(server.main_context(), housekeeping(*db), boost::asio::detached);
  boost::asio::co_spawn(server.main_context(), return_free_memory(), boost::asio::detached);
  boost::asio::signal_set signals(server.main_context(), SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log::info("shutting down", {{"signal", sig}});
    for (const auto& hook : stopping_hooks) hook();  // streams end, so the drain need not wait for them
    server.shutdown();
  });

  const double startup_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  log::info("keel serving", {{"version", KEEL_VERSION},
                             {"modules", to_json(names)},
                             {"listen", config.listen},
                             {"io_threads", opt.io_threads},
                             {"fast_paths", http::fast::kState},
                             {"data_dir", config.data_dir.string()},
                             {"config", config.config_file.string()},
                             {"startup_ms", static_cast<int64_t>(startup_ms + 0.5)}});
  server.run();
  // Draining is done; what is left (flush, deregister, close) is short. A second SIGTERM (a supervisor
  // repeating itself) must not cut it off by the default action once the signal set is gone: it is ignored
  // from here to exit. A second SIGINT still ends the process at once, as a user at a terminal expects.
  signals.clear();
  std::signal(SIGTERM, SIG_IGN);
  if (sequencer) sequencer->stop();
  stopping = true;
  for (const auto& hook : drained_hooks)
    hook();  // the gateway counts the requests since its last flush, once
  try {
    db->write_sync([&](db::Session& s) {
      for (const auto& self : own_instances)
        registry::delete_instance(s, wiring.outbox, self.module, self.instance_id, "shutdown", "");
    });
  } catch (const std::exception& e) {
    log::warn("could not deregister", {{"error", e.what()}});
  }
  wiring.outbox.number_with(nullptr);
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
