#include "keel/app/health.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/db/database.hpp"

namespace keel {

namespace {
// A probe older than this means the database stopped answering.
constexpr auto kStale = std::chrono::seconds(5);
// SQLite's free-space check: this much must be allocatable next to the database (a WAL that reuses its
// file can go on accepting small updates on a full disk while inserts that grow the file fail).
constexpr off_t kRoomBytes = 1 << 20;

std::string process_id() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(getpid());
}

double probe_once(db::Database& db) {
  const auto start = std::chrono::steady_clock::now();
  db.read_sync([](db::Session& s) { s.query("SELECT 1"); });
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}
}  // namespace

HealthProbe::HealthProbe(db::Database& db) : db_(db), id_(process_id()) {}

void HealthProbe::check_room() const {
  const std::string dir = db_.storage_dir();
  if (dir.empty()) return;
  const std::string path = dir + "/.keel-room-" + std::to_string(getpid());
  const int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    throw db::DbError(db::DbError::Kind::Unavailable, std::string("room check: ") + std::strerror(errno));
  const int err = ::posix_fallocate(fd, 0, kRoomBytes);
  ::close(fd);
  ::unlink(path.c_str());
  if (err != 0)
    throw db::DbError(db::DbError::Kind::Unavailable, std::string("room check: ") + std::strerror(err));
}

void HealthProbe::probe_writes(db::Session& s) {
  const std::string now = now_rfc3339();
  s.query(
      "INSERT INTO health_writes (id, checked_at, created_at, updated_at) VALUES ($1, $2, $2, $2) "
      "ON CONFLICT (id) DO UPDATE SET checked_at = $2, updated_at = $2",
      {id_, now});
}

void HealthProbe::record(bool ok, double latency_ms) {
  // A write that failed since the last passing write probe shows until the next one passes.
  const auto failure = db_.last_write_failure();
  std::lock_guard lk(mu_);
  const std::string write_failure = failure ? failure->reason : std::string();
  if (write_failure != state_.write_failure)
    (write_failure.empty() ? log::info : log::warn)(
        "database write health changed", {{"writes", write_failure.empty() ? "ok" : write_failure}});
  state_.write_failure = write_failure;
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
    // Rows of processes gone for a day go (each process keeps one).
    db_.write_sync([&](db::Session& s) {
      s.query("DELETE FROM health_writes WHERE checked_at < $1",
              {format_rfc3339(std::chrono::system_clock::now() - std::chrono::hours(24))});
    });
  } catch (const std::exception&) {
    // The probes below find out what is wrong.
  }
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
      bool passed = false;
      try {
        // On a database worker: a stalled disk must not stall this I/O thread.
        co_await db_.write([this](db::Session& s) {
          check_room();
          probe_writes(s);
        });
        passed = true;
      } catch (const db::DbError& e) {
        db_.note_write_failure(e);  // (a failed write is noted by the database layer too: once is enough)
      } catch (const std::exception&) {
      }
      if (passed) db_.note_write_probe_passed();
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
      const bool reads = st.ok && !stale_now;
      const bool writes = reads && st.write_failure.empty();
      const bool ok = reads && writes;
      // Built by hand: Boost.JSON would print the latency as 4E-1.
      char latency[64] = "";
      if (reads) std::snprintf(latency, sizeof latency, ",\"latency_ms\":%.3f", st.latency_ms);
      const std::string write_check =
          writes ? R"({"status":"ok"})"
                 : R"({"status":"fail","reason":)" +
                       boost::json::serialize(boost::json::value(reads ? st.write_failure : "unavailable")) +
                       "}";
      body = std::string(R"({"status":")") + (ok ? "ok" : "fail") + R"(","service":)" +
             boost::json::serialize(boost::json::value(module)) + R"(,"version":")" + KEEL_VERSION +
             R"(","checks":{"database":{"status":")" + (reads ? "ok" : "fail") + "\"" + latency +
             R"(},"writes":)" + write_check + "}" + (extra_now.empty() ? "" : "," + extra_now) + "}";
      last_extra = extra_now;
      status = ok ? 200 : 503;
      generation = st.generation;
      stale = stale_now;
    }
    return {status, body};
  }
};
}  // namespace

void declare_common_routes(http::Router& router) {
  for (const char* path : {"/health", "/health/live", "/metrics"})
    router.add(http::Method::Get, path, http::Access::anyone(), http::Handler());
}

void add_common_routes(http::Router& router, CommonRoutes common) {
  auto cache = std::make_shared<HealthCache>();
  cache->module = common.module;
  cache->probe = common.probe;
  cache->extra = common.extra;
  router.add(http::Method::Get, "/health", http::Access::anyone(),
             [cache](http::Request&) -> boost::asio::awaitable<http::Response> {
               auto [status, body] = cache->get();
               co_return http::Response::json_text(status, std::move(body));
             });
  router.add(http::Method::Get, "/health/live", http::Access::anyone(),
             [](http::Request&) -> boost::asio::awaitable<http::Response> {
               co_return http::Response::json_text(200, R"({"status":"ok"})");
             });
  router.add(http::Method::Get, "/metrics", http::Access::anyone(),
             [fn = common.metrics_text](http::Request&) -> boost::asio::awaitable<http::Response> {
               co_return http::Response::text(200, fn(), "text/plain; version=0.0.4; charset=utf-8");
             });
}

}  // namespace keel
