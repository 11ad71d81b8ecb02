#pragma once
// Per-module HTTP metrics in Prometheus text format: request counts by route, method and status, and
// latency histograms by route and method.
#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "keel/http/request.hpp"

namespace keel::http {

class HttpMetrics {
 public:
  explicit HttpMetrics(std::string module) : module_(std::move(module)) {}
  // `route` must outlive this object (a route pattern owned by the router, or a static string).
  void record(const std::string* route, Method method, int status, double seconds);
  // Appends this module's series to `out`.
  void render(std::string& out) const;
  static constexpr std::array<double, 14> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                      0.1,    0.25,  0.5,    1,     2.5,  5,     10};

 private:
  struct Key {
    const std::string* route;
    Method method;
    int status;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<const void*>()(k.route) ^ (static_cast<size_t>(k.method) << 20) ^
             static_cast<size_t>(k.status);
    }
  };
  struct Histogram {
    std::array<uint64_t, kBuckets.size()> buckets{};
    uint64_t count = 0;
    double sum = 0;
  };
  std::string module_;
  mutable std::mutex mu_;
  std::unordered_map<Key, uint64_t, KeyHash> counts_;
  std::unordered_map<Key, Histogram, KeyHash> latency_;  // status 0
};

// Process-wide series (resident memory, open connections, uptime).
void render_process_metrics(std::string& out, int64_t open_connections);

}  // namespace keel::http
