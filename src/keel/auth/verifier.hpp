#pragma once
// The one token-validation component every module's protected routes use: signature against the published
// keys (one algorithm per key, RFC 8725), iss/aud/exp/nbf, and revocation of the session (or service token)
// behind the token, polled from the database so a logout anywhere takes effect within a second.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "keel/auth/jws.hpp"
#include "keel/db/database.hpp"
#include "keel/http/request.hpp"
#include "keel/module/caller.hpp"

namespace keel::auth {

using Principal = module::Principal;

struct VerifierSettings {
  std::string issuer = "keel";
  std::string audience = "keel";
  int64_t access_ttl_seconds = 900;
  int64_t leeway_seconds = 30;
};

class TokenVerifier : public module::Authenticator {
 public:
  TokenVerifier(db::Database& db, VerifierSettings settings);
  // Loads keys and recent revocations (at start, before serving).
  void load_sync();
  void reload() override { load_sync(); }
  // Keeps keys (every 5 s) and revocations (every 250 ms) fresh until the io_context stops.
  boost::asio::awaitable<void> run();
  // Throws a 401 keel::Error for anything but a valid, live token.
  Principal verify(std::string_view token) const { return *verify_shared(token); }
  // The same, without copying the cached claims (the gateway's hot path).
  std::shared_ptr<const Principal> verify_shared(std::string_view token) const;
  // The Bearer token of the request; 401 when absent or invalid.
  Principal authenticate(const http::Request& req) const { return *authenticate_shared(req); }
  std::shared_ptr<const Principal> authenticate_shared(const http::Request& req) const override;
  bool still_valid(const Principal& who) const override;
  // Makes a revocation effective in this process at once (others see it at their next poll).
  void revoke_local(const std::string& session_id, std::chrono::system_clock::time_point until) override;
  const VerifierSettings& settings() const { return settings_; }

  // Drops cached verifications of tokens expired at `now` (unix seconds), and of tokens not presented for a
  // minute (a refreshed token's predecessor, a client gone: verified again if they come back, ~50 us); how
  // many went. The refresh loop calls it every 10 s, so the cache holds the tokens in use, not every token
  // issued in the last access-token lifetime (a soak with refreshes grew ~1.5 MiB a minute).
  size_t forget_expired(int64_t now);
  size_t cached() const;

 private:
  void load_keys(db::Session& s);
  void load_revocations(db::Session& s, const std::string& since);

  db::Database& db_;
  VerifierSettings settings_;
  const uint64_t instance_;  // tells this verifier's entries in the threads' front caches (verify_shared)
  std::atomic<uint64_t> revocation_epoch_{0};  // moves whenever a session or service token joins revoked_
  mutable std::shared_mutex keys_mu_;
  std::unordered_map<std::string, VerifyKey> keys_;
  mutable std::shared_mutex revoked_mu_;
  std::unordered_map<std::string, std::chrono::system_clock::time_point> revoked_;  // sid -> forget after
  std::chrono::system_clock::time_point last_poll_{};
  mutable std::mutex cache_mu_;
  // Hashes the token's last 32 characters, which lie in its signature: enough to spread the buckets, at a
  // tenth of the cost of hashing the whole token on every request. Only verified tokens enter the cache, and
  // their signatures are ours, so nobody can craft colliding entries; equality still compares whole tokens.
  struct TokenHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const {
      return std::hash<std::string_view>()(s.size() > 32 ? s.substr(s.size() - 32) : s);
    }
  };
  // whole token -> verified claims; looked up by string_view, without copying the token
  struct Cached {
    std::shared_ptr<const Principal> principal;
    int64_t used;  // unix seconds, when last looked up here
  };
  mutable std::unordered_map<std::string, Cached, TokenHash, std::equal_to<>> cache_;
};

}  // namespace keel::auth
