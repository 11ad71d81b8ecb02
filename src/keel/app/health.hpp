#pragma once
// The database check behind every module's /health: probed in the background once a second, so a health
// request costs a cached read rather than a database round trip.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <mutex>
#include <string>

#include "keel/http/router.hpp"

namespace keel {
namespace db {
class Database;
}

class HealthProbe {
 public:
  explicit HealthProbe(db::Database& db) : db_(db) {}
  // One probe on the calling thread (at start, before serving).
  void probe_sync();
  // Probes every `period` until the io_context stops.
  boost::asio::awaitable<void> run(std::chrono::milliseconds period);

  struct State {
    bool ok = false;
    double latency_ms = 0;
    std::chrono::steady_clock::time_point checked;
    uint64_t generation = 0;
  };
  State state() const;

 private:
  void record(bool ok, double latency_ms);
  db::Database& db_;
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

}  // namespace keel
