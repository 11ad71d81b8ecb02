#pragma once
// Auth's logic: users, sessions, refresh rotation. No HTTP types; routes.cpp maps requests onto it.
#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <memory>
#include <optional>
#include <string>

#include "keel/auth/issuer.hpp"
#include "keel/auth/passwords.hpp"
#include "keel/auth/settings.hpp"
#include "keel/auth/throttle.hpp"
#include "keel/db/database.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/hooks.hpp"
#include "keel/module/outbox.hpp"

namespace keel::auth {

using Principal = module::Principal;

struct ClientInfo {
  std::string ip;
  std::string user_agent;
  std::string traceparent;
};

struct NewUser {
  std::string email;
  std::string password;
  std::optional<std::string> display_name;
  bool admin = false;
};

class AuthService {
 public:
  // `hooks`: run in the transaction that creates a user (module/hooks.hpp).
  AuthService(db::Database& db, const AuthSettings& settings, TokenIssuer& issuer,
              module::Authenticator& verifier, PasswordHasher& hasher, const module::Outbox& outbox,
              const module::Hooks& hooks);

  // Each returns the contract's token response.
  boost::asio::awaitable<boost::json::object> register_user(const NewUser& user, const ClientInfo& client);
  boost::asio::awaitable<boost::json::object> login(const std::string& email, const std::string& password,
                                                    const ClientInfo& client);
  boost::asio::awaitable<boost::json::object> refresh(const std::string& refresh_token,
                                                      const ClientInfo& client);

  boost::asio::awaitable<void> logout(const Principal& who, const ClientInfo& client);
  boost::asio::awaitable<void> logout_all(const Principal& who, const ClientInfo& client);
  boost::asio::awaitable<boost::json::object> me(const Principal& who);
  boost::asio::awaitable<boost::json::object> update_me(
      const Principal& who, const std::optional<std::optional<std::string>>& display_name,
      const std::optional<boost::json::object>& metadata);
  boost::asio::awaitable<void> change_password(const Principal& who, const std::string& current,
                                               const std::string& next, const ClientInfo& client);
  // Pages of (items, key of the last item).
  using Listing = std::pair<boost::json::array, std::string>;
  // The user's live sessions, newest first; `current` (the caller's own session, or empty) is marked.
  boost::asio::awaitable<Listing> list_sessions(const std::string& user_id, const std::string& current,
                                                int limit, const std::optional<std::string>& after);
  // Revokes one session of the user (404 when it is not theirs); `reason` goes in the event
  // ("revoked_by_user", "revoked_by_admin"), with `by` (the admin) when given.
  boost::asio::awaitable<void> revoke_session(const std::string& user_id, const std::string& session_id,
                                              const std::string& reason, const ClientInfo& client,
                                              const std::string& by = {});
  boost::asio::awaitable<boost::json::object> jwks();

  // The command line's `keel user create` (synchronous: no I/O threads there).
  boost::json::object create_user_sync(const NewUser& user);
  // At start: stored emails whose key (email.hpp) an older keel computed otherwise (only ASCII was folded)
  // get today's key. Two accounts whose emails now have one key keep theirs and are logged for an operator;
  // how many changed.
  int64_t rekey_emails_sync();
  // `keel token create`: a long-lived token with role "service".
  std::string create_service_token_sync(const std::string& service, int64_t ttl_seconds);

  // Validation shared by the routes and the command line; throws a 422 naming the field.
  void validate_new_user(const NewUser& user) const;
  const AuthSettings& settings() const { return settings_; }
  LoginThrottle& throttle() { return throttle_; }

 private:
  // The user's row, the hooks' rows and its event, in `s`; the user as JSON.
  boost::json::object insert_user(db::Session& s, const NewUser& u, const std::string& hash,
                                  const std::string& traceparent) const;

  db::Database& db_;
  AuthSettings settings_;
  TokenIssuer& issuer_;
  module::Authenticator& verifier_;
  PasswordHasher& hasher_;
  const module::Outbox& outbox_;
  const module::Hooks& hooks_;
  LoginThrottle throttle_;
  std::string refresh_key_;
};

}  // namespace keel::auth
