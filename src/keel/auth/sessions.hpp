#pragma once
// Auth's sessions: creating one with its first refresh token, the token response, revoking, and the
// refresh decision (a pure function of the stored state and the time, so it is tested with any clock).
#include <boost/json/object.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keel/auth/issuer.hpp"
#include "keel/auth/settings.hpp"
#include "keel/db/database.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/outbox.hpp"

namespace keel::auth {

struct ClientInfo;

// Seconds since the epoch (a JWT's times).
int64_t unix_seconds(std::chrono::system_clock::time_point t);

struct SessionTokens {
  std::string id;
  std::string refresh_token;
  std::chrono::system_clock::time_point expires_at;
};

// Inserts a session and its first refresh token. Refresh tokens are 256 random bits; only their SHA-256
// is stored. A rotated token's successor is HMAC(refresh key, token), so presenting the same token again
// inside the reuse window yields the same successor without the server ever storing a token.
SessionTokens create_session(db::Session& s, const std::string& user_id, const ClientInfo& client,
                             const AuthSettings& settings);

// The contract's token response: an access token (at most until the session ends) and the refresh token.
boost::json::object token_response(const TokenIssuer& issuer, const AuthSettings& settings,
                                   boost::json::object user, const std::string& session_id,
                                   const std::string& refresh_token,
                                   std::chrono::system_clock::time_point session_expires);

// Revokes the matching live sessions, each with its keel.auth.session.revoked event; (id, expires_at) of
// each. `by`: the admin who revoked them, in the events (empty: the user or keel).
std::vector<std::pair<std::string, std::string>> revoke_where(
    db::Session& s, const module::Outbox& outbox, const std::string& condition,
    const std::vector<db::Value>& params, const std::string& reason, const std::string& user_id,
    const std::string& traceparent, const std::string& by = {});

// Makes the revocations revoke_where returned effective in this process at once (others poll them).
void revoke_locally(module::Authenticator& verifier,
                    const std::vector<std::pair<std::string, std::string>>& revoked);

// What a presented refresh token and its session hold.
struct RefreshState {
  bool session_revoked = false;
  std::chrono::system_clock::time_point session_expires, session_last_used;
  // When the presented token was rotated (nullopt: it is the session's newest).
  std::optional<std::chrono::system_clock::time_point> rotated_at;
  // Whether the token it was rotated to is still the session's newest (not rotated in its turn).
  bool successor_current = false;
};

enum class RefreshVerdict {
  Rotate,         // the newest token: issue its successor
  SameSuccessor,  // rotated moments ago (a client's retry, a second tab): the same successor again
  Revoked,        // the session was revoked
  Expired,        // past the session's lifetime, or idle too long: end it
  Reuse,          // an old token came back: it leaked; end the session, so its newest token stops working too
};

// The refresh decision at `now`, in this order: revoked, expired (absolute or idle), rotate, a retry inside
// the reuse window, reuse.
RefreshVerdict decide_refresh(const RefreshState& state, std::chrono::system_clock::time_point now,
                              std::chrono::seconds idle, std::chrono::seconds reuse_window);

}  // namespace keel::auth
