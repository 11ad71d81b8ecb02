#include "keel/auth/verifier.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keel/auth/keys.hpp"
#include "keel/core/error.hpp"
#include "keel/core/log.hpp"
#include "keel/core/thread_slots.hpp"
#include "keel/core/time.hpp"

namespace keel::auth {

namespace {
constexpr size_t kCacheLimit = 50000;
constexpr int64_t kCacheIdleSeconds = 60;
constexpr auto kPollOverlap = std::chrono::seconds(60);  // tolerates clock skew between machines

int64_t unix_now() { return coarse_unix_seconds(); }

std::optional<int64_t> claim_int(const boost::json::object& o, std::string_view key) {
  auto it = o.find(key);
  if (it == o.end()) return std::nullopt;
  if (it->value().is_int64()) return it->value().as_int64();
  if (it->value().is_uint64()) return static_cast<int64_t>(it->value().as_uint64());
  if (it->value().is_double()) return static_cast<int64_t>(it->value().as_double());
  return std::nullopt;
}

std::string str(const boost::json::object& o, std::string_view key) {
  auto it = o.find(key);
  return it != o.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

[[noreturn]] void reject(const char* why) { throw Error::unauthorized(why); }
}  // namespace

namespace {
std::atomic<uint64_t> g_next_verifier{1};

// A thread's most recent tokens (thread_slot picks by the signature's tail).
using TokenFront = FrontEntry<std::shared_ptr<const Principal>>;
}  // namespace

TokenVerifier::TokenVerifier(db::Database& db, VerifierSettings settings)
    : db_(db), settings_(std::move(settings)), instance_(g_next_verifier.fetch_add(1)) {}

void TokenVerifier::load_keys(db::Session& s) {
  std::unordered_map<std::string, VerifyKey> fresh;
  for (auto& k : load_published_keys(s)) fresh.emplace(k.public_key.kid(), std::move(k.public_key));
  std::unique_lock lk(keys_mu_);
  keys_ = std::move(fresh);
}

void TokenVerifier::load_revocations(db::Session& s, const std::string& since) {
  const auto now = std::chrono::system_clock::now();
  const auto access_horizon =
      now + std::chrono::seconds(settings_.access_ttl_seconds + settings_.leeway_seconds);
  std::vector<std::pair<std::string, std::chrono::system_clock::time_point>> found;
  // A revoked session's access tokens all expire within one access TTL; a service token lives to its expiry.
  for (const auto& row :
       s.query("SELECT id, expires_at FROM sessions WHERE revoked_at >= $1", {since}).rows) {
    auto exp = parse_rfc3339(row.time(1)).value_or(access_horizon);
    found.emplace_back(row.text(0), std::min(exp, access_horizon));
  }
  for (const auto& row :
       s.query("SELECT id, expires_at FROM service_tokens WHERE revoked_at >= $1", {since}).rows)
    found.emplace_back(row.text(0), parse_rfc3339(row.time(1)).value_or(access_horizon));
  std::unique_lock lk(revoked_mu_);
  bool added = false;
  for (auto& [id, until] : found) added = revoked_.insert_or_assign(id, until).second || added;
  if (added) revocation_epoch_.fetch_add(1, std::memory_order_release);
  for (auto it = revoked_.begin(); it != revoked_.end();) {
    if (it->second < now)
      it = revoked_.erase(it);
    else
      ++it;
  }
}

void TokenVerifier::load_sync() {
  const auto start = std::chrono::system_clock::now();
  db_.read_sync([&](db::Session& s) {
    load_keys(s);
    load_revocations(
        s, format_rfc3339(start - std::chrono::seconds(settings_.access_ttl_seconds) - kPollOverlap));
    // Revoked service tokens live long: take all that have not expired.
    std::unique_lock lk(revoked_mu_);
    for (const auto& row :
         s.query("SELECT id, expires_at FROM service_tokens WHERE revoked_at IS NOT NULL AND expires_at > $1",
                 {format_rfc3339(start)})
             .rows)
      revoked_[row.text(0)] = parse_rfc3339(row.time(1)).value_or(start);
    revocation_epoch_.fetch_add(1, std::memory_order_release);
  });
  last_poll_ = start;
}

boost::asio::awaitable<void> TokenVerifier::run() {
  const auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(ex);
  for (int tick = 1;; ++tick) {
    timer.expires_after(std::chrono::milliseconds(250));
    co_await timer.async_wait(boost::asio::use_awaitable);
    const auto start = std::chrono::system_clock::now();
    const std::string since = format_rfc3339(last_poll_ - kPollOverlap);
    const bool keys_too = tick % 20 == 0;
    if (tick % 40 == 0) forget_expired(unix_now());
    try {
      co_await db_.read([&](db::Session& s) {
        load_revocations(s, since);
        if (keys_too) load_keys(s);
      });
      last_poll_ = start;
    } catch (const std::exception& e) {
      log::warn("token verifier refresh failed", {{"error", e.what()}});
    }
  }
}

size_t TokenVerifier::forget_expired(int64_t now) {
  std::lock_guard lk(cache_mu_);
  return std::erase_if(cache_, [now](const auto& entry) {
    return entry.second.principal->expires_at <= now || entry.second.used < now - kCacheIdleSeconds;
  });
}

size_t TokenVerifier::cached() const {
  std::lock_guard lk(cache_mu_);
  return cache_.size();
}

void TokenVerifier::revoke_local(const std::string& session_id, std::chrono::system_clock::time_point until) {
  std::unique_lock lk(revoked_mu_);
  revoked_[session_id] = until;
  revocation_epoch_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const Principal> TokenVerifier::verify_shared(std::string_view token) const {
  const int64_t now = unix_now();
  // Read before the revocation check below, so an entry stored with it is never newer than that check.
  const uint64_t epoch = revocation_epoch_.load(std::memory_order_acquire);
  // This thread's front cache first: a token found there was valid, its session unrevoked, at `epoch`.
  TokenFront& front = thread_slot<TokenFront>(token);
  if (front.holds(instance_, epoch, token)) {
    if (front.value->expires_at <= now) reject("access token has expired");
    return front.value;
  }
  std::shared_ptr<const Principal> principal;
  {
    std::lock_guard lk(cache_mu_);
    if (auto it = cache_.find(token); it != cache_.end()) {
      principal = it->second.principal;
      it->second.used = now;
    }
  }
  if (!principal) {
    auto jwt = decode_jwt(token);
    if (!jwt) reject("malformed access token");
    const auto& h = jwt->header;
    if (h.contains("crit")) reject("unsupported token header");
    const std::string alg = str(h, "alg");
    const std::string kid = str(h, "kid");
    {
      std::shared_lock lk(keys_mu_);
      auto it = keys_.find(kid);
      if (it == keys_.end()) reject("access token signed by an unknown key");
      // The key decides the algorithm; a token naming another ("none", HS256, ...) is refused outright.
      if (alg != alg_name(it->second.alg())) reject("access token algorithm does not match its key");
      if (!it->second.verify(jwt->signing_input, jwt->signature)) reject("access token signature is invalid");
    }
    const auto& c = jwt->claims;
    if (str(c, "iss") != settings_.issuer) reject("access token issuer is not accepted");
    bool aud_ok = false;
    if (auto it = c.find("aud"); it != c.end()) {
      if (it->value().is_string()) aud_ok = it->value().as_string() == settings_.audience;
      if (it->value().is_array())
        for (const auto& a : it->value().as_array())
          aud_ok = aud_ok || (a.is_string() && a.as_string() == settings_.audience);
    }
    if (!aud_ok) reject("access token audience is not accepted");
    const auto exp = claim_int(c, "exp");
    if (!exp) reject("access token has no expiry");
    if (auto nbf = claim_int(c, "nbf"); nbf && *nbf > now + settings_.leeway_seconds)
      reject("access token is not yet valid");
    Principal p;
    p.subject = str(c, "sub");
    p.session_id = str(c, "sid");
    p.expires_at = *exp;
    if (p.subject.empty() || p.session_id.empty()) reject("access token lacks sub or sid");
    if (auto it = c.find("roles"); it != c.end() && it->value().is_array())
      for (const auto& r : it->value().as_array())
        if (r.is_string()) p.roles.emplace_back(r.as_string());
    p.service = str(c, "svc");
    if (p.service.empty()) p.user_id = p.subject;
    for (const auto& r : p.roles) p.roles_joined += (p.roles_joined.empty() ? "" : ",") + r;
    principal = std::make_shared<const Principal>(std::move(p));
    std::lock_guard lk(cache_mu_);
    if (cache_.size() >= kCacheLimit) cache_.clear();
    cache_.emplace(std::string(token), Cached{principal, now});
  }
  if (principal->expires_at <= now) reject("access token has expired");
  {
    std::shared_lock lk(revoked_mu_);
    if (revoked_.count(principal->session_id)) reject("access token's session has been revoked");
  }
  front.set(instance_, epoch, token, principal);
  return principal;
}

bool TokenVerifier::still_valid(const Principal& who) const {
  if (who.expires_at <= unix_now()) return false;
  std::shared_lock lk(revoked_mu_);
  return !revoked_.count(who.session_id);
}

std::shared_ptr<const Principal> TokenVerifier::authenticate_shared(const http::Request& req) const {
  const std::string_view h = req.header("authorization");
  if (h.empty()) throw Error::unauthorized("missing bearer token");
  if (h.size() < 8 || !(h.substr(0, 7) == "Bearer " || h.substr(0, 7) == "bearer "))
    throw Error::unauthorized("the Authorization header must be 'Bearer <token>'");
  std::string_view token = h.substr(7);
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  return verify_shared(token);
}

}  // namespace keel::auth
