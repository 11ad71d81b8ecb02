#pragma once
// The database checks behind every module's /health, probed in the background (so a health request costs a
// cached read): a read (`SELECT 1`), and the write path: a small write, room on SQLite's file system, and the
// failures of real writes, every half second. A write that failed since the last passing write probe turns
// /health to 503 with its reason; the next passing probe turns it back.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <mutex>
#include <string>

#include "keel/http/router.hpp"

namespace keel {
namespace db {
class Database;
class Session;
}  // namespace db

class HealthProbe {
 public:
  explicit HealthProbe(db::Database& db);
  // One probe on the calling thread (at start, before serving).
  void probe_sync();
  // Probes every `period` until the io_context stops.
  boost::asio::awaitable<void> run(std::chrono::milliseconds period);

  struct State {
    bool ok = false;
    double latency_ms = 0;
    std::string write_failure;  // empty while writes succeed, else the reason ("disk full", ...)
    std::chrono::steady_clock::time_point checked;
    uint64_t generation = 0;
  };
  State state() const;

 private:
  void record(bool ok, double latency_ms);
  // The write probe; throws what the write path threw.
  void probe_writes(db::Session& s);
  void check_room() const;
  db::Database& db_;
  const std::string id_;  // this process's row in health_writes
  mutable std::mutex mu_;
  State state_;
};

// Adds GET /health, /health/live and /metrics for one module.
struct CommonRoutes {
  std::string module;
  HealthProbe* probe;
  std::function<std::string()> metrics_text;
  // Extra members for the body, as `"name":value` JSON text (the gateway's "modules"), or empty.
  std::function<std::string()> extra = nullptr;
};
void add_common_routes(http::Router& router, CommonRoutes common);
// The same routes, described only (public; handlers never called): app/modules.hpp, declared_routes.
void declare_common_routes(http::Router& router);

}  // namespace keel
