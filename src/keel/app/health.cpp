#include "keel/app/health.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cstdio>

#include "keel/core/log.hpp"
#include "keel/db/database.hpp"

namespace keel {

namespace {
// A probe older than this means the database stopped answering.
constexpr auto kStale = std::chrono::seconds(5);

double probe_once(db::Database& db) {
  const auto start = std::chrono::steady_clock::now();
  db.read_sync([](db::Session& s) { s.query("SELECT 1"); });
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

void HealthProbe::record(bool ok, double latency_ms) {
  std::lock_guard lk(mu_);
  if (ok != state_.ok && state_.generation > 0)
    (ok ? log::info : log::warn)("database health changed", {{"ok", ok}});
  state_.ok = ok;
  state_.latency_ms = latency_ms;
  state_.checked = std::chrono::steady_clock::now();
  ++state_.generation;
}

HealthProbe::State HealthProbe::state() const {
  std::lock_guard lk(mu_);
  return state_;
}

void HealthProbe::probe_sync() {
  try {
    record(true, probe_once(db_));
  } catch (const std::exception& e) {
    record(false, 0);
  }
}

boost::asio::awaitable<void> HealthProbe::run(std::chrono::milliseconds period) {
  const auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(ex);
  for (;;) {
    timer.expires_after(period);
    co_await timer.async_wait(boost::asio::use_awaitable);
    try {
      const double ms = co_await db_.read([](db::Session& s) {
        const auto start = std::chrono::steady_clock::now();
        s.query("SELECT 1");
        return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      });
      record(true, ms);
    } catch (const std::exception& e) {
      record(false, 0);
    }
  }
}

namespace {
struct HealthCache {
  std::string module;
  HealthProbe* probe;
  std::function<std::string()> extra;
  std::string last_extra;
  std::mutex mu;
  uint64_t generation = ~0ULL;
  bool stale = false;
  int status = 503;
  std::string body;

  std::pair<int, std::string> get() {
    const auto st = probe->state();
    const bool stale_now = std::chrono::steady_clock::now() - st.checked > kStale;
    const std::string extra_now = extra ? extra() : std::string();
    std::lock_guard lk(mu);
    if (st.generation != generation || stale_now != stale || extra_now != last_extra) {
      const bool ok = st.ok && !stale_now;
      // Built by hand: Boost.JSON would print the latency as 4E-1.
      char latency[64] = "";
      if (ok) std::snprintf(latency, sizeof latency, ",\"latency_ms\":%.3f", st.latency_ms);
      body = std::string(R"({"status":")") + (ok ? "ok" : "fail") + R"(","service":)" +
             boost::json::serialize(boost::json::value(module)) + R"(,"version":")" + KEEL_VERSION +
             R"(","checks":{"database":{"status":")" + (ok ? "ok" : "fail") + "\"" + latency + "}}" +
             (extra_now.empty() ? "" : "," + extra_now) + "}";
      last_extra = extra_now;
      status = ok ? 200 : 503;
      generation = st.generation;
      stale = stale_now;
    }
    return {status, body};
  }
};
}  // namespace

void add_common_routes(http::Router& router, CommonRoutes common) {
  auto cache = std::make_shared<HealthCache>();
  cache->module = common.module;
  cache->probe = common.probe;
  cache->extra = common.extra;
  router.add(http::Method::Get, "/health", [cache](http::Request&) -> boost::asio::awaitable<http::Response> {
    auto [status, body] = cache->get();
    co_return http::Response::json_text(status, std::move(body));
  });
  router.add(http::Method::Get, "/health/live", [](http::Request&) -> boost::asio::awaitable<http::Response> {
    co_return http::Response::json_text(200, R"({"status":"ok"})");
  });
  router.add(http::Method::Get, "/metrics",
             [fn = common.metrics_text](http::Request&) -> boost::asio::awaitable<http::Response> {
               co_return http::Response::text(200, fn(), "text/plain; version=0.0.4; charset=utf-8");
             });
}

}  // namespace keel
