#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/thread_slots.hpp"
#include "keel/db/database.hpp"
#include "keel/gateway/gateway.hpp"
#include "keel/gateway/thread_state.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/registry_view.hpp"

namespace keel::gateway {

namespace net = boost::asio;
using http::iequals;
using http::Method;
using http::Request;
using http::Response;

namespace {

bool hop_by_hop(std::string_view name) {
  static constexpr std::string_view kNames[] = {"connection",          "keep-alive", "proxy-authenticate",
                                                "proxy-authorization", "te",         "trailer",
                                                "transfer-encoding",   "upgrade",    "content-length"};
  for (auto n : kNames)
    if (iequals(name, n)) return true;
  return false;
}

// X-Keel-User-Id and X-Keel-Roles, however a client spells them (X_Keel_User_Id reaches CGI-style upstreams
// as the same variable).
bool is_identity_header(std::string_view k) {
  constexpr std::string_view kPrefix = "x-keel-";
  if (k.size() < kPrefix.size()) return false;
  for (size_t i = 0; i < kPrefix.size(); ++i) {
    const char c = k[i] == '_' ? '-' : http::ascii_lower(k[i]);
    if (c != kPrefix[i]) return false;
  }
  return true;
}

bool idempotent(Method m) {
  return m == Method::Get || m == Method::Head || m == Method::Put || m == Method::Delete ||
         m == Method::Options;
}

}  // namespace

net::awaitable<Response> Gateway::proxy(Request& req, [[maybe_unused]] Table table, const Target* target_ptr,
                                        Caller who) {
  const Target& target = *target_ptr;
  if (target.instances.empty()) {
    Error e = Error::unavailable("module " + target.module + " has no passing instance", 1);
    throw e;
  }
  std::string& fields = req.scratch;
  fields.clear();
  std::string_view forwarded_for;
  req.for_each_header([&](std::string_view k, std::string_view v) {
    if (hop_by_hop(k) || iequals(k, "host") || is_identity_header(k) || iequals(k, "x-request-id") ||
        iequals(k, "traceparent") || iequals(k, "x-forwarded-proto") || iequals(k, "forwarded") ||
        iequals(k, "x-real-ip"))
      return;
    // A third-party module gets the caller's identity in X-Keel-* headers, never the bearer token it could
    // replay against keel (not even on its public routes, where a client may send one anyway); keel's own
    // modules check the token themselves.
    if (!target.keel && iequals(k, "authorization")) return;
    if (iequals(k, "x-forwarded-for")) {
      forwarded_for = v;
      return;
    }
    http::append_field_unchecked(fields, k, v);  // as the server's parser gave it
  });
  // Values keel made (the peer's address, a sanitized or new request id, a checked or new traceparent) go
  // unchecked; the client's X-Forwarded-For came through the parser.
  if (forwarded_for.empty()) {
    http::append_field_unchecked(fields, "X-Forwarded-For", req.remote_ip);
  } else {
    std::string chain(forwarded_for);
    chain += ", ";
    chain += req.remote_ip;
    http::append_field_unchecked(fields, "X-Forwarded-For", chain);
  }
  http::append_field_unchecked(fields, "X-Forwarded-Proto", "http");
  http::append_field_unchecked(fields, "X-Request-Id", req.request_id);
  http::append_field_unchecked(fields, "traceparent", req.trace.traceparent());
  if (who) {
    http::append_field(fields, "X-Keel-User-Id", who->subject);
    http::append_field(fields, "X-Keel-Roles", who->roles_joined);
  }
  http::ClientRequest up;
  up.method = req.method_str;
  up.target = req.target;
  up.fields = fields;
  up.body = req.body;
  http::ClientOptions opt;
  opt.connect_timeout = settings_.connect_timeout;
  opt.timeout = settings_.upstream_timeout;
  opt.policy = &policy_;
  opt.keel_target = target.keel;
  // A body of unknown length or over 64 KiB is passed on as it arrives: the gateway holds one piece of it per
  // connection, however large it is or however slowly its client reads, and an event stream flows.
  opt.stream_above = 64 << 10;

  ThreadState& st = thread_state();
  const size_t n = target.instances.size();
  const size_t start = st.round_robin++;
  std::string last_error;
  bool timed_out = false;
  int attempts = 0;
  for (size_t k = 0; k < n && attempts < 2; ++k) {
    const size_t i = (start + k) % n;
    const http::Endpoint& ep = target.instances[i];
    // An ejected instance is skipped while others remain; with none left, it is tried all the same.
    if (k + 1 < n && ejected_count_.load(std::memory_order_relaxed) != 0 && is_ejected(ep.key)) continue;
    ++attempts;
    try {
      http::ClientResponse res = co_await http::fetch(ep, up, opt);
      // The upstream's Content-Type travels with its other fields.
      Response out{res.status, std::string(), std::move(res.body),  {}, std::move(res.fields),
                   {},         false,         std::move(res.stream)};
      if (req.method == Method::Head) {
        out.proxied_head = true;
        out.head_length = res.content_length;
      }
      co_return out;
    } catch (const http::ClientError& e) {
      last_error = e.what();
      timed_out = e.timed_out();
      // Refused, unreachable or reset mid-request: the instance is likely gone. Slow is not gone.
      if (!e.delivered() || !e.timed_out()) eject(target, i);
      // Send it elsewhere only when that cannot do a write twice.
      if (e.delivered() && !idempotent(req.method)) break;
    }
  }
  log::warn("upstream failed",
            {{"module", target.module}, {"request_id", req.request_id}, {"error", last_error}});
  if (timed_out) throw Error(504, "Gateway Timeout", "module " + target.module + " did not answer in time");
  throw Error(502, "Bad Gateway", "module " + target.module + " is unreachable");
}

bool Gateway::is_ejected(const std::string& key) const {
  std::lock_guard lk(eject_mu_);
  return ejected_.contains(key);
}

void Gateway::eject(const Target& target, size_t i) {
  const http::Endpoint& ep = target.instances[i];
  {
    std::lock_guard lk(eject_mu_);
    if (!ejected_.insert(ep.key).second) return;
    ejected_count_.store(ejected_.size(), std::memory_order_relaxed);
  }
  log::warn("instance ejected until its health check passes", {{"module", target.module}, {"url", ep.key}});
  net::co_spawn(io_, probe_ejected(ep.key, ep, target.health_paths.at(i), target.keel), net::detached);
}

net::awaitable<void> Gateway::probe_ejected(std::string key, http::Endpoint ep, std::string health_path,
                                            bool keel) {
  const auto ex = co_await net::this_coro::executor;
  net::steady_timer timer(ex);
  std::string fields;
  http::append_field(fields, "User-Agent", "keel-gateway");
  http::ClientRequest req;
  req.target = health_path;
  req.fields = fields;
  http::ClientOptions opt;
  opt.connect_timeout = std::min(settings_.connect_timeout, std::chrono::milliseconds(1000));
  opt.timeout = std::chrono::milliseconds(2000);
  opt.body_limit = 1 << 20;
  opt.policy = &policy_;
  opt.keel_target = keel;  // judged as its requests are: a probe must not pool what they may not use
  for (;;) {
    timer.expires_after(settings_.probe_interval);
    co_await timer.async_wait(net::use_awaitable);
    // An instance the registry has since removed from the table needs no probe.
    bool routed = false;
    for (const auto& t : table()->targets)
      for (const auto& e : t.instances) routed = routed || e.key == key;
    bool healthy = false;
    if (routed) {
      try {
        const http::ClientResponse res = co_await http::fetch(ep, req, opt);
        healthy = res.status < 500;
      } catch (const http::ClientError&) {
      }
    }
    if (!routed || healthy) break;
  }
  {
    std::lock_guard lk(eject_mu_);
    ejected_.erase(key);
    ejected_count_.store(ejected_.size(), std::memory_order_relaxed);
  }
  log::info("ejected instance back in rotation", {{"url", key}});
}

}  // namespace keel::gateway
