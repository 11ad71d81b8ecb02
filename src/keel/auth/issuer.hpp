#pragma once
// Signs access tokens and service tokens with the current signing key. A new key is published (JWKS) for a
// while before it signs, so every verifier has loaded it by the time a token it signed arrives.
#include <boost/asio/awaitable.hpp>
#include <shared_mutex>
#include <string>
#include <vector>

#include "keel/auth/crypto.hpp"
#include "keel/auth/jws.hpp"
#include "keel/auth/settings.hpp"
#include "keel/db/database.hpp"

namespace keel::auth {

class TokenIssuer {
 public:
  TokenIssuer(db::Database& db, AuthSettings settings, MasterKey master);
  // Creates the first key when there is none, then loads and unseals the published keys.
  void load_sync();
  // Reloads the keys every 5 s (picks up `keel keys rotate`).
  boost::asio::awaitable<void> run();

  struct Claims {
    std::string subject;
    std::string session_id;
    std::vector<std::string> roles;
    int64_t expires_at = 0;  // unix seconds
    std::string service;     // service tokens only
  };
  // Signs with `kid`, or with current_kid() when empty.
  std::string sign(const Claims& claims, const std::string& kid = {}) const;
  // The key to sign with now; `active_only` skips a just-retired key (for long-lived tokens).
  std::string current_kid(bool active_only = false) const;
  const MasterKey& master() const { return master_; }
  const AuthSettings& settings() const { return settings_; }

 private:
  void load(db::Session& s);
  db::Database& db_;
  AuthSettings settings_;
  MasterKey master_;
  mutable std::shared_mutex mu_;
  std::vector<std::pair<std::string, SigningKey>> keys_;  // (created_at, key), oldest first
  std::vector<std::string> active_;                       // kids of active keys
};

}  // namespace keel::auth
