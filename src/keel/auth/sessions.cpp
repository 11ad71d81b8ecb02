#include "keel/auth/sessions.hpp"

#include <algorithm>

#include "keel/auth/crypto.hpp"
#include "keel/auth/service.hpp"
#include "keel/auth/users.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"

namespace keel::auth {

namespace json = boost::json;
using std::chrono::seconds;
using std::chrono::system_clock;

int64_t unix_seconds(system_clock::time_point t) {
  return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count();
}

SessionTokens create_session(db::Session& s, const std::string& user_id, const ClientInfo& client,
                             const AuthSettings& settings) {
  SessionTokens t;
  t.id = uuid_v7();
  t.refresh_token = base64url_encode(random_bytes(32));
  const auto now = system_clock::now();
  t.expires_at = now + seconds(settings.session_ttl_seconds);
  const std::string now_s = format_rfc3339(now);
  s.query(
      "INSERT INTO sessions (id, user_id, user_agent, ip, created_at, updated_at, last_used_at, expires_at) "
      "VALUES ($1, $2, $3, $4, $5, $5, $5, $6)",
      {t.id, user_id, printable(client.user_agent, 512), client.ip, now_s, format_rfc3339(t.expires_at)});
  s.query(
      "INSERT INTO refresh_tokens (token_hash, session_id, created_at, updated_at) VALUES ($1, $2, $3, $3)",
      {sha256_hex(t.refresh_token), t.id, now_s});
  return t;
}

json::object token_response(const TokenIssuer& issuer, const AuthSettings& settings, json::object user,
                            const std::string& session_id, const std::string& refresh_token,
                            system_clock::time_point session_expires) {
  const auto now = system_clock::now();
  const int64_t exp =
      std::min(unix_seconds(now) + settings.access_ttl_seconds, unix_seconds(session_expires));
  const std::string access =
      issuer.sign({std::string(user.at("id").as_string()), session_id, roles_of(user), exp, {}});
  return json::object{
      {"access_token", access},         {"token_type", "Bearer"},   {"expires_in", exp - unix_seconds(now)},
      {"refresh_token", refresh_token}, {"session_id", session_id}, {"user", std::move(user)}};
}

std::vector<std::pair<std::string, std::string>> revoke_where(
    db::Session& s, const module::Outbox& outbox, const std::string& condition,
    const std::vector<db::Value>& params, const std::string& reason, const std::string& user_id,
    const std::string& traceparent, const std::string& by) {
  auto rows =
      s.query("SELECT id, expires_at FROM sessions WHERE revoked_at IS NULL AND " + condition, params);
  std::vector<std::pair<std::string, std::string>> out;
  const std::string now = now_rfc3339();
  for (const auto& r : rows.rows) {
    // Conditional, so two racing revocations of one session write one event.
    if (s.query("UPDATE sessions SET revoked_at = $2, revoked_reason = $3, updated_at = $2 "
                "WHERE id = $1 AND revoked_at IS NULL",
                {r.text(0), now, reason})
            .affected != 1)
      continue;
    out.emplace_back(r.text(0), r.time(1));
  }
  // Events after every row change: the outbox lock is then never held while waiting for a row.
  for (const auto& [sid, exp] : out) {
    json::object data{{"session_id", sid}, {"reason", reason}};
    if (!by.empty()) data["by"] = by;
    outbox.append(s, {"keel.auth.session.revoked", kSource, user_id, std::move(data), traceparent});
  }
  return out;
}

void revoke_locally(module::Authenticator& verifier,
                    const std::vector<std::pair<std::string, std::string>>& revoked) {
  for (const auto& [sid, exp] : revoked)
    verifier.revoke_local(sid, parse_rfc3339(exp).value_or(std::chrono::system_clock::now()));
}

RefreshVerdict decide_refresh(const RefreshState& st, system_clock::time_point now, seconds idle,
                              seconds reuse_window) {
  if (st.session_revoked) return RefreshVerdict::Revoked;
  if (st.session_expires <= now || st.session_last_used + idle <= now) return RefreshVerdict::Expired;
  if (!st.rotated_at) return RefreshVerdict::Rotate;
  if (st.successor_current && now - *st.rotated_at <= reuse_window) return RefreshVerdict::SameSuccessor;
  return RefreshVerdict::Reuse;
}

}  // namespace keel::auth
