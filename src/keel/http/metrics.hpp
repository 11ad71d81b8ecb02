#pragma once
// Per-module HTTP metrics in Prometheus text format: request counts by route, method and status, and
// latency histograms by route and method.
#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "keel/http/request.hpp"

namespace keel::http {

// The last two minutes of traffic per upstream module, second by second (the gateway's figures of every
// module it routes to, for the admin console's charts): requests, server errors and a latency histogram whose
// buckets grow by √2 from 50 µs, so a percentile read from it is within 19% of the true one. Bounded: 120
// seconds of each of at most 64 modules (later names are counted as "other").
class RecentTraffic {
 public:
  static constexpr size_t kSeconds = 120, kBuckets = 40, kModules = 64;
  struct Second {
    int64_t at = 0;  // Unix seconds
    uint64_t requests = 0, errors = 0;
    double p50 = 0, p99 = 0;  // seconds, 0 without requests
  };
  struct Slot {
    int64_t at = -1;
    uint64_t requests = 0, errors = 0;
    std::array<uint32_t, kBuckets> latency{};
  };
  using Raw = std::vector<std::pair<std::string, std::vector<Slot>>>;
  // Called with the lock of its owner held.
  void record(std::string_view module, int status, double seconds, int64_t now_s);
  // The slots of the complete seconds of the last `span` (≤ kSeconds) before `now_s`, oldest first, per
  // module: a copy, taken under the owner's lock; summarize() it outside the lock.
  Raw copy(size_t span, int64_t now_s) const;
  static std::map<std::string, std::vector<Second>, std::less<>> summarize(const Raw& raw);
  std::map<std::string, std::vector<Second>, std::less<>> last(size_t span, int64_t now_s) const {
    return summarize(copy(span, now_s));
  }
  // The bucket a latency falls in, and a bucket's upper bound (seconds).
  static size_t bucket_of(double seconds);
  static double upper_bound(size_t bucket);
  // The latency at quantile q (0..1) of a histogram: its bucket's upper bound.
  static double quantile(const std::array<uint32_t, kBuckets>& histogram, uint64_t count, double q);

 private:
  std::map<std::string, std::array<Slot, kSeconds>, std::less<>> modules_;
};

class HttpMetrics {
 public:
  explicit HttpMetrics(std::string module) : module_(std::move(module)) {}
  // `route` must outlive this object (a route pattern owned by the router, or a static string). A request the
  // gateway routed names its `upstream` module, whose recent traffic is kept too.
  void record(const std::string* route, Method method, int status, double seconds,
              std::string_view upstream = {});
  // The recent traffic of every upstream module (RecentTraffic::last).
  std::map<std::string, std::vector<RecentTraffic::Second>, std::less<>> recent(size_t span) const;
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
  RecentTraffic recent_;
};

// Process-wide series (resident memory, open connections, uptime).
void render_process_metrics(std::string& out, int64_t open_connections);

}  // namespace keel::http
