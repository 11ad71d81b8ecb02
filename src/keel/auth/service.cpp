#include "keel/auth/service.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "keel/auth/crypto.hpp"
#include "keel/auth/email.hpp"
#include "keel/auth/keys.hpp"
#include "keel/auth/sessions.hpp"
#include "keel/auth/users.hpp"
#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/http/json_body.hpp"

namespace keel::auth {

namespace json = boost::json;
using std::chrono::seconds;

namespace {
// A session as its owner lists it (db/columns.hpp).
constexpr db::Columns kSession{"id", "created_at", "last_used_at", "expires_at", "user_agent", "ip"};
const std::string kSessionColumns = kSession.list();
}  // namespace

using std::chrono::system_clock;

AuthService::AuthService(db::Database& db, const AuthSettings& settings, TokenIssuer& issuer,
                         module::Authenticator& verifier, PasswordHasher& hasher,
                         const module::Outbox& outbox, const module::Hooks& hooks)
    : db_(db),
      settings_(settings),
      issuer_(issuer),
      verifier_(verifier),
      hasher_(hasher),
      outbox_(outbox),
      hooks_(hooks),
      throttle_(settings.login_max_failures, settings.login_max_failures_per_ip,
                seconds(settings.login_window_seconds)),
      refresh_key_(derive_key(issuer.master(), 1, "keelrfsh")) {}

void AuthService::validate_new_user(const NewUser& u) const {
  std::vector<FieldError> errors;
  if (!valid_email(u.email) || !email_key(u.email))
    errors.push_back({"email", "must be a valid email address"});
  const size_t len = http::utf8_length(u.password);
  if (len < settings_.password_min || len > settings_.password_max)
    errors.push_back({"password", "must be " + std::to_string(settings_.password_min) + " to " +
                                      std::to_string(settings_.password_max) + " characters"});
  if (u.display_name && http::utf8_length(*u.display_name) > 200)
    errors.push_back({"display_name", "must be at most 200 characters"});
  if (!errors.empty()) throw Error::validation(std::move(errors));
}

boost::asio::awaitable<json::object> AuthService::register_user(const NewUser& u, const ClientInfo& client) {
  validate_new_user(u);
  const std::string hash = co_await hasher_.hash(u.password);
  try {
    co_return co_await db_.write([&](db::Session& s) {
      auto user = insert_user(s, u, hash, client.traceparent);
      const std::string id(user["id"].as_string());
      auto session = create_session(s, id, client, settings_);
      return token_response(issuer_, settings_, std::move(user), session.id, session.refresh_token,
                            session.expires_at);
    });
  } catch (const db::DbError& e) {
    if (e.kind() == db::DbError::Kind::UniqueViolation)
      throw Error::conflict("an account with this email already exists");
    throw;
  }
}

boost::asio::awaitable<json::object> AuthService::login(const std::string& email, const std::string& password,
                                                        const ClientInfo& client) {
  const std::string account = key_of(email);
  if (auto wait = throttle_.acquire(account, client.ip)) {
    Error e(429, "Too Many Requests", "too many failed logins; try again later");
    e.headers.emplace_back("Retry-After", std::to_string(*wait));
    throw e;
  }
  bool ok = false, password_ok = false, disabled = false;
  std::optional<json::object> user;
  std::string stored_hash;
  try {
    auto rows = co_await db_.read([&](db::Session& s) {
      return s.query("SELECT " + kUserColumns + " FROM users WHERE email_lower = $1", {account});
    });
    if (!rows.empty()) {
      user = user_json(rows.rows[0]);
      stored_hash = rows.rows[0].text(kUser["password_hash"]);
      disabled = rows.rows[0].text(kUser["status"]) != "active";
    }
    // An unknown account costs the same argon2id verification as a wrong password.
    password_ok = co_await hasher_.verify(stored_hash, password) && user.has_value();
    ok = password_ok && !disabled;
  } catch (...) {
    throttle_.release(account, client.ip, false);
    throw;
  }
  throttle_.release(account, client.ip, ok);
  if (!ok) {
    const std::string subject = user ? std::string(user->at("id").as_string()) : std::string();
    const char* reason = !user ? "unknown_account" : !password_ok ? "wrong_password" : "disabled";
    co_await db_.write([&](db::Session& s) {
      outbox_.append(s, {"keel.auth.login.failed", kSource, subject,
                         json::object{{"reason", reason}, {"ip", client.ip}}, client.traceparent});
    });
    // Only the account's own password learns that it is disabled.
    if (password_ok) throw Error::forbidden("this account is disabled");
    throw Error::unauthorized("invalid credentials");
  }
  std::string rehash;
  if (hasher_.needs_rehash(stored_hash)) rehash = co_await hasher_.hash(password);
  co_return co_await db_.write([&](db::Session& s) {
    const std::string id(user->at("id").as_string());
    if (!rehash.empty())
      s.query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
              {id, rehash, now_rfc3339()});
    auto session = create_session(s, id, client, settings_);
    outbox_.append(s, {"keel.auth.login.succeeded", kSource, id,
                       json::object{{"session_id", session.id}, {"ip", client.ip}}, client.traceparent});
    return token_response(issuer_, settings_, std::move(*user), session.id, session.refresh_token,
                          session.expires_at);
  });
}

boost::asio::awaitable<json::object> AuthService::refresh(const std::string& token,
                                                          const ClientInfo& client) {
  struct Outcome {
    std::optional<json::object> response;
    const char* error = nullptr;
    std::vector<std::pair<std::string, std::string>> revoked;
  };
  const std::string hash = sha256_hex(token);
  Outcome out = co_await db_.write([&](db::Session& s) {
    Outcome o;
    // The presented refresh token and its session.
    constexpr db::Columns kPresented{"rt.session_id", "rt.rotated_at", "ss.user_id",
                                     "ss.revoked_at", "ss.expires_at", "ss.last_used_at"};
    auto rows = s.query("SELECT " + kPresented.list() +
                            " FROM refresh_tokens rt JOIN sessions ss ON ss.id = rt.session_id WHERE "
                            "rt.token_hash = $1",
                        {hash});
    if (rows.empty()) {
      o.error = "invalid refresh token";
      return o;
    }
    const auto& r = rows.rows[0];
    const std::string sid = r.text(kPresented["session_id"]);
    const std::string user_id = r.text(kPresented["user_id"]);
    const auto now = system_clock::now();
    const std::string now_s = format_rfc3339(now);
    const std::string successor = base64url_encode(hmac_sha256(refresh_key_, token));
    const std::string successor_hash = sha256_hex(successor);
    RefreshState st;
    st.session_revoked = !r.is_null(kPresented["revoked_at"]);
    st.session_expires = parse_rfc3339(r.time(kPresented["expires_at"])).value_or(now);
    st.session_last_used = parse_rfc3339(r.time(kPresented["last_used_at"])).value_or(now);
    // When the presented token was rotated, and whether its successor is still the newest.
    const auto load_rotation = [&] {
      auto again = s.query("SELECT rotated_at FROM refresh_tokens WHERE token_hash = $1", {hash});
      st.rotated_at =
          again.rows.at(0).is_null(0)
              ? std::nullopt
              : std::optional(parse_rfc3339(again.rows.at(0).time(0)).value_or(system_clock::time_point{}));
      auto succ = s.query("SELECT rotated_at FROM refresh_tokens WHERE token_hash = $1", {successor_hash});
      st.successor_current = !succ.empty() && succ.rows[0].is_null(0);
    };
    if (!r.is_null(kPresented["rotated_at"])) load_rotation();
    const seconds idle(settings_.session_idle_seconds), window(settings_.refresh_reuse_window_seconds);
    RefreshVerdict verdict = decide_refresh(st, now, idle, window);
    if (verdict == RefreshVerdict::Rotate) {
      // Only one racing rotation wins the update; a loser finds the token rotated, and decides again.
      if (s.query("UPDATE refresh_tokens SET rotated_at = $2, updated_at = $2 WHERE token_hash = $1 AND "
                  "rotated_at IS NULL",
                  {hash, now_s})
              .affected == 1) {
        s.query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, updated_at) VALUES ($1, $2, $3, "
            "$3)",
            {successor_hash, sid, now_s});
      } else {
        load_rotation();
        verdict = decide_refresh(st, now, idle, window);
      }
    }
    switch (verdict) {
      case RefreshVerdict::Rotate:
      case RefreshVerdict::SameSuccessor:
        break;
      case RefreshVerdict::Revoked:
        o.error = "the session has been revoked";
        return o;
      case RefreshVerdict::Expired:
        o.revoked = revoke_where(s, outbox_, "id = $1", {sid}, "expired", user_id, client.traceparent);
        o.error = "the session has expired";
        return o;
      case RefreshVerdict::Reuse:
        o.revoked =
            revoke_where(s, outbox_, "id = $1", {sid}, "refresh_token_reuse", user_id, client.traceparent);
        o.error = "refresh token reuse detected; the session has been revoked";
        return o;
    }
    // Conditional: a logout that committed meanwhile wins.
    if (s.query("UPDATE sessions SET last_used_at = $2, updated_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                {sid, now_s})
            .affected != 1) {
      o.error = "the session has been revoked";
      return o;
    }
    auto urows = s.query("SELECT " + kUserColumns + " FROM users WHERE id = $1", {user_id});
    if (urows.empty() || urows.rows[0].text(kUser["status"]) != "active") {
      o.revoked = revoke_where(s, outbox_, "id = $1", {sid}, "user_disabled", user_id, client.traceparent);
      o.error = "the account is not active";
      return o;
    }
    auto user = user_json(urows.rows[0]);
    o.response = token_response(issuer_, settings_, std::move(user), sid, successor, st.session_expires);
    return o;
  });
  revoke_locally(verifier_, out.revoked);
  if (!out.response) throw Error::unauthorized(out.error);
  co_return std::move(*out.response);
}

boost::asio::awaitable<void> AuthService::logout(const Principal& who, const ClientInfo& client) {
  auto revoked = co_await db_.write([&](db::Session& s) {
    return revoke_where(s, outbox_, "id = $1 AND user_id = $2", {who.session_id, who.user_id}, "logout",
                        who.user_id, client.traceparent);
  });
  revoke_locally(verifier_, revoked);
  verifier_.revoke_local(who.session_id, system_clock::now() + seconds(settings_.access_ttl_seconds + 60));
}

boost::asio::awaitable<void> AuthService::logout_all(const Principal& who, const ClientInfo& client) {
  auto revoked = co_await db_.write([&](db::Session& s) {
    return revoke_where(s, outbox_, "user_id = $1", {who.user_id}, "logout_all", who.user_id,
                        client.traceparent);
  });
  revoke_locally(verifier_, revoked);
}

boost::asio::awaitable<json::object> AuthService::me(const Principal& who) {
  static const std::string sql = "SELECT " + kUserColumns + " FROM users WHERE id = $1";
  const std::vector<db::Value> params{who.user_id};
  const db::Result rows = co_await db_.query_read(sql, params);
  if (rows.empty()) throw Error::unauthorized("the user no longer exists");
  co_return user_json(rows.rows[0]);
}

boost::asio::awaitable<json::object> AuthService::update_me(
    const Principal& who, const std::optional<std::optional<std::string>>& display_name,
    const std::optional<json::object>& metadata) {
  co_return co_await db_.write([&](db::Session& s) {
    const std::string now = now_rfc3339();
    if (display_name)
      s.query("UPDATE users SET display_name = $2, updated_at = $3 WHERE id = $1",
              {who.user_id, *display_name ? db::Value(**display_name) : db::Value(nullptr), now});
    if (metadata)
      s.query("UPDATE users SET metadata = $2, updated_at = $3 WHERE id = $1",
              {who.user_id, json::serialize(*metadata), now});
    auto rows = s.query("SELECT " + kUserColumns + " FROM users WHERE id = $1", {who.user_id});
    if (rows.empty()) throw Error::unauthorized("the user no longer exists");
    return user_json(rows.rows[0]);
  });
}

boost::asio::awaitable<void> AuthService::change_password(const Principal& who, const std::string& current,
                                                          const std::string& next, const ClientInfo& client) {
  const size_t len = http::utf8_length(next);
  if (len < settings_.password_min || len > settings_.password_max)
    throw Error::validation({{"new_password", "must be " + std::to_string(settings_.password_min) + " to " +
                                                  std::to_string(settings_.password_max) + " characters"}});
  auto rows = co_await db_.read([&](db::Session& s) {
    return s.query("SELECT password_hash, email_lower FROM users WHERE id = $1", {who.user_id});
  });
  if (rows.empty()) throw Error::unauthorized("the user no longer exists");
  const std::string account = rows.rows[0].text(1);
  if (auto wait = throttle_.acquire(account, client.ip)) {
    Error e(429, "Too Many Requests", "too many failed attempts; try again later");
    e.headers.emplace_back("Retry-After", std::to_string(*wait));
    throw e;
  }
  bool ok = false;
  try {
    ok = co_await hasher_.verify(rows.rows[0].text(0), current);
  } catch (...) {
    throttle_.release(account, client.ip, false);
    throw;
  }
  throttle_.release(account, client.ip, ok);
  if (!ok) throw Error::validation({{"current_password", "is not the current password"}});
  const std::string hash = co_await hasher_.hash(next);
  auto revoked = co_await db_.write([&](db::Session& s) {
    s.query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1",
            {who.user_id, hash, now_rfc3339()});
    outbox_.append(s, {"keel.auth.password.changed", kSource, who.user_id,
                       json::object{{"user_id", who.user_id}}, client.traceparent});
    return revoke_where(s, outbox_, "user_id = $1 AND id <> $2", {who.user_id, who.session_id},
                        "password_changed", who.user_id, client.traceparent);
  });
  revoke_locally(verifier_, revoked);
}

boost::asio::awaitable<AuthService::Listing> AuthService::list_sessions(
    const std::string& user_id, const std::string& current, int limit,
    const std::optional<std::string>& after) {
  if (after && !is_uuid(*after)) throw Error::bad_request("the cursor is not one this server issued");
  auto rows = co_await db_.read([&](db::Session& s) {
    std::vector<db::Value> params{user_id, now_rfc3339(), int64_t{limit}};
    std::string sql = "SELECT " + kSessionColumns +
                      " FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2";
    if (after) {
      sql += " AND id < $4";
      params.emplace_back(*after);
    }
    return s.query(sql + " ORDER BY id DESC LIMIT $3", params);
  });
  json::array items;
  std::string last;
  for (const auto& r : rows.rows) {
    constexpr size_t agent = kSession["user_agent"], ip = kSession["ip"];
    last = r.text(kSession["id"]);
    items.push_back(
        json::object{{"id", last},
                     {"created_at", r.time(kSession["created_at"])},
                     {"last_used_at", r.time(kSession["last_used_at"])},
                     {"expires_at", r.time(kSession["expires_at"])},
                     {"user_agent", r.is_null(agent) ? json::value(nullptr) : json::value(r.text(agent))},
                     {"ip", r.is_null(ip) ? json::value(nullptr) : json::value(r.text(ip))},
                     {"current", last == current}});
  }
  co_return Listing{std::move(items), last};
}

boost::asio::awaitable<void> AuthService::revoke_session(const std::string& user_id,
                                                         const std::string& session_id,
                                                         const std::string& reason, const ClientInfo& client,
                                                         const std::string& by) {
  if (!is_uuid(session_id)) throw Error::not_found("no such session");
  auto found = co_await db_.write([&](db::Session& s) {
    auto owned = s.query("SELECT id FROM sessions WHERE id = $1 AND user_id = $2", {session_id, user_id});
    if (owned.empty()) return std::optional<std::vector<std::pair<std::string, std::string>>>();
    return std::optional(
        revoke_where(s, outbox_, "id = $1", {session_id}, reason, user_id, client.traceparent, by));
  });
  if (!found) throw Error::not_found("no such session");
  revoke_locally(verifier_, *found);
}

boost::asio::awaitable<json::object> AuthService::jwks() {
  auto keys = co_await db_.read([](db::Session& s) { return load_published_keys(s); });
  json::array arr;
  for (const auto& k : keys) arr.push_back(k.public_key.jwk());
  co_return json::object{{"keys", std::move(arr)}};
}

int64_t AuthService::rekey_emails_sync() {
  // Only keys holding a character past ASCII can differ: for ASCII the old key (lower case) is today's.
  const auto rows = db_.read_sync([](db::Session& s) {
    return s.query(s.dialect() == db::Dialect::Postgres
                       ? "SELECT id, email, email_lower FROM users WHERE email_lower ~ '[^ -~]'"
                       : "SELECT id, email, email_lower FROM users WHERE email_lower GLOB '*[^ -~]*'");
  });
  int64_t changed = 0;
  for (const auto& row : rows.rows) {
    const auto key = email_key(row.text(1));
    if (!key || *key == row.text(2)) continue;
    try {
      db_.write_sync([&](db::Session& s) {
        s.query("UPDATE users SET email_lower = $2, updated_at = $3 WHERE id = $1",
                {row.text(0), *key, now_rfc3339()});
      });
      ++changed;
    } catch (const db::DbError& e) {
      if (e.kind() != db::DbError::Kind::UniqueViolation) throw;
      log::warn(
          "two accounts have emails that are now one: this one keeps its old key, so logins with that email "
          "reach the other; merge or rename them",
          {{"user_id", row.text(0)}});
    }
  }
  if (changed > 0) log::info("emails re-keyed (Unicode normalization)", {{"users", changed}});
  return changed;
}

json::object AuthService::insert_user(db::Session& s, const NewUser& u, const std::string& hash,
                                      const std::string& traceparent) const {
  const std::string id = uuid_v7();
  const std::string now = now_rfc3339();
  s.query(
      "INSERT INTO users (id, email, email_lower, display_name, password_hash, roles, created_at, "
      "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
      {id, u.email, key_of(u.email), u.display_name ? db::Value(*u.display_name) : db::Value(nullptr), hash,
       std::string(u.admin ? R"(["user","admin"])" : R"(["user"])"), now});
  // What other modules keep per user (billing's account) is created in this transaction, by their hooks.
  hooks_.run_user_created(s, module::UserCreated{id, traceparent});
  outbox_.append(s, {"keel.auth.user.registered", kSource, id, json::object{{"user_id", id}}, traceparent});
  return user_json(s.query("SELECT " + kUserColumns + " FROM users WHERE id = $1", {id}).rows.at(0));
}

json::object AuthService::create_user_sync(const NewUser& u) {
  validate_new_user(u);
  const std::string hash = hasher_.hash_sync(u.password);
  try {
    return db_.write_sync([&](db::Session& s) { return insert_user(s, u, hash, ""); });
  } catch (const db::DbError& e) {
    if (e.kind() == db::DbError::Kind::UniqueViolation)
      throw Error::conflict("an account with this email already exists");
    throw;
  }
}

std::string AuthService::create_service_token_sync(const std::string& service, int64_t ttl_seconds) {
  const std::string id = uuid_v7();
  const auto exp = system_clock::now() + seconds(ttl_seconds);
  // Long-lived: signed by an active key, never one about to leave the JWKS.
  const std::string kid = issuer_.current_kid(true);
  db_.write_sync([&](db::Session& s) {
    const std::string now = now_rfc3339();
    s.query(
        "INSERT INTO service_tokens (id, service, kid, expires_at, created_at, updated_at) VALUES ($1, $2, "
        "$3, $4, $5, $5)",
        {id, service, kid, format_rfc3339(exp), now});
  });
  return issuer_.sign({"service:" + service, id, {"service"}, unix_seconds(exp), service}, kid);
}

}  // namespace keel::auth
