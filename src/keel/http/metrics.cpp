#include "keel/http/metrics.hpp"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

#include "keel/core/time.hpp"

namespace keel::http {

namespace {
const auto kStart = std::chrono::steady_clock::now();

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string fmt_double(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}
}  // namespace

size_t RecentTraffic::bucket_of(double seconds) {
  // Bucket b holds latencies up to 50 µs · √2^b.
  if (seconds <= 50e-6) return 0;
  const double b = std::ceil(2 * std::log2(seconds / 50e-6));
  return b >= kBuckets - 1 ? kBuckets - 1 : static_cast<size_t>(b);
}

double RecentTraffic::upper_bound(size_t bucket) { return 50e-6 * std::pow(2.0, bucket / 2.0); }

double RecentTraffic::quantile(const std::array<uint32_t, kBuckets>& histogram, uint64_t count, double q) {
  if (count == 0) return 0;
  // The smallest bucket holding at least q of the requests (the nearest-rank percentile).
  const auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count)));
  uint64_t seen = 0;
  for (size_t b = 0; b < kBuckets; ++b) {
    seen += histogram[b];
    if (seen >= rank && seen > 0) return upper_bound(b);
  }
  return upper_bound(kBuckets - 1);
}

void RecentTraffic::record(std::string_view module, int status, double seconds, int64_t now_s) {
  auto it = modules_.find(module);
  if (it == modules_.end())
    it = modules_.size() < kModules ? modules_.try_emplace(std::string(module)).first
                                    : modules_.try_emplace("other").first;
  Slot& slot = it->second[static_cast<size_t>(now_s) % kSeconds];
  if (slot.at != now_s) slot = Slot{now_s};
  ++slot.requests;
  if (status >= 500) ++slot.errors;
  ++slot.latency[bucket_of(seconds)];
}

RecentTraffic::Raw RecentTraffic::copy(size_t span, int64_t now_s) const {
  span = std::min(span, kSeconds - 1);  // the slot of this second is still filling
  Raw out;
  out.reserve(modules_.size());
  for (const auto& [module, slots] : modules_) {
    auto& series = out.emplace_back(module, std::vector<Slot>()).second;
    series.reserve(span);
    for (int64_t at = now_s - static_cast<int64_t>(span); at < now_s; ++at) {
      const Slot& slot = slots[static_cast<size_t>(at) % kSeconds];
      series.push_back(slot.at == at ? slot : Slot{at});
    }
  }
  return out;
}

std::map<std::string, std::vector<RecentTraffic::Second>, std::less<>> RecentTraffic::summarize(
    const Raw& raw) {
  std::map<std::string, std::vector<Second>, std::less<>> out;
  for (const auto& [module, slots] : raw) {
    auto& series = out[module];
    for (const Slot& slot : slots)
      series.push_back(Second{slot.at, slot.requests, slot.errors, quantile(slot.latency, slot.requests, 0.5),
                              quantile(slot.latency, slot.requests, 0.99)});
  }
  return out;
}

std::map<std::string, std::vector<RecentTraffic::Second>, std::less<>> HttpMetrics::recent(
    size_t span) const {
  const int64_t now = coarse_unix_seconds();
  RecentTraffic::Raw raw;
  {
    std::lock_guard lk(mu_);
    raw = recent_.copy(span, now);
  }
  return RecentTraffic::summarize(raw);
}

void HttpMetrics::record(const std::string* route, Method method, int status, double seconds,
                         std::string_view upstream) {
  const int64_t now = upstream.empty() ? 0 : coarse_unix_seconds();
  std::lock_guard lk(mu_);
  if (!upstream.empty()) recent_.record(upstream, status, seconds, now);
  ++counts_[Key{route, method, status}];
  Histogram& h = latency_[Key{route, method, 0}];
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) ++h.buckets[i];
  ++h.count;
  h.sum += seconds;
}

void HttpMetrics::render(std::string& out) const {
  // Copy under the lock, format outside it, in a stable order.
  std::map<std::tuple<std::string, std::string, int>, uint64_t> counts;
  std::map<std::pair<std::string, std::string>, Histogram> latency;
  {
    std::lock_guard lk(mu_);
    for (const auto& [k, v] : counts_) counts[{*k.route, std::string(method_name(k.method)), k.status}] = v;
    for (const auto& [k, v] : latency_) latency[{*k.route, std::string(method_name(k.method))}] = v;
  }
  const std::string mod = "module=\"" + escape_label(module_) + "\"";
  out += "# HELP keel_http_requests_total HTTP requests served, by route, method and status.\n";
  out += "# TYPE keel_http_requests_total counter\n";
  for (const auto& [k, v] : counts) {
    const auto& [route, method, status] = k;
    out += "keel_http_requests_total{" + mod + ",route=\"" + escape_label(route) + "\",method=\"" + method +
           "\",status=\"" + std::to_string(status) + "\"} " + std::to_string(v) + "\n";
  }
  out += "# HELP keel_http_request_duration_seconds HTTP request latency, by route and method.\n";
  out += "# TYPE keel_http_request_duration_seconds histogram\n";
  for (const auto& [k, h] : latency) {
    const std::string labels = mod + ",route=\"" + escape_label(k.first) + "\",method=\"" + k.second + "\"";
    for (size_t i = 0; i < kBuckets.size(); ++i)
      out += "keel_http_request_duration_seconds_bucket{" + labels + ",le=\"" + fmt_double(kBuckets[i]) +
             "\"} " + std::to_string(h.buckets[i]) + "\n";
    out += "keel_http_request_duration_seconds_bucket{" + labels + ",le=\"+Inf\"} " +
           std::to_string(h.count) + "\n";
    out += "keel_http_request_duration_seconds_sum{" + labels + "} " + fmt_double(h.sum) + "\n";
    out += "keel_http_request_duration_seconds_count{" + labels + "} " + std::to_string(h.count) + "\n";
  }
}

void render_process_metrics(std::string& out, int64_t open_connections) {
  long rss_pages = 0;
  if (std::ifstream statm("/proc/self/statm"); statm) {
    long size = 0;
    statm >> size >> rss_pages;
  }
  const double uptime = std::chrono::duration<double>(std::chrono::steady_clock::now() - kStart).count();
  out += "# HELP process_resident_memory_bytes Resident memory size in bytes.\n";
  out += "# TYPE process_resident_memory_bytes gauge\n";
  out += "process_resident_memory_bytes " + std::to_string(rss_pages * sysconf(_SC_PAGESIZE)) + "\n";
  out += "# HELP keel_uptime_seconds Seconds since the process started.\n";
  out += "# TYPE keel_uptime_seconds gauge\n";
  out += "keel_uptime_seconds " + fmt_double(uptime) + "\n";
  out += "# HELP keel_http_open_connections Open client connections, all modules.\n";
  out += "# TYPE keel_http_open_connections gauge\n";
  out += "keel_http_open_connections " + std::to_string(open_connections) + "\n";
}

}  // namespace keel::http
