#pragma once
// Who is calling: the verified token behind a request to a route that is not public. The router checks a
// route's declared access (http/access.hpp) before its handler runs, through the guard made here from the
// process's token verifier; a handler reads the caller with caller(req) and never checks a token itself.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/http/router.hpp"

namespace keel::module {

struct Principal {
  std::string subject;     // user id, or "service:<name>"
  std::string user_id;     // empty for service tokens
  std::string service;     // the service's name for service tokens
  std::string session_id;  // "sid"
  std::vector<std::string> roles;
  int64_t expires_at = 0;    // unix seconds
  std::string roles_joined;  // "user,admin", for the gateway's X-Keel-Roles
  bool has_role(std::string_view role) const;
  bool is_admin() const { return has_role("admin"); }
  bool is_service() const { return has_role("service"); }
};

// Verifies a request's Bearer token (auth's TokenVerifier is the one every process has).
class Authenticator {
 public:
  virtual ~Authenticator() = default;
  // The verified caller; a 401 keel::Error when the token is absent or not valid.
  virtual std::shared_ptr<const Principal> authenticate_shared(const http::Request& req) const = 0;
  // Whether a caller verified earlier still is one: its token has not expired and its session (or service
  // token) has not been revoked since. For what outlives its request (a stream), checked as it goes on.
  virtual bool still_valid(const Principal& who) const = 0;
  // Reads the signing keys and revocations again now (auth, after creating its first key).
  virtual void reload() = 0;
  // A session (or service token) ended in this process: its tokens fail here at once, elsewhere within a
  // second. `until`: when they would have expired anyway.
  virtual void revoke_local(const std::string& session_id, std::chrono::system_clock::time_point until) = 0;
};

// The router's guard: 401 without a valid token, 403 when the caller is not of a kind the route admits.
http::Guard guard(const Authenticator& authenticator);

// The caller the guard let through. Only on routes that are not public (anything else is a bug in the route's
// declaration, and throws std::logic_error: a 500, never an anonymous caller).
const Principal& caller(const http::Request& req);

}  // namespace keel::module
