#include "keel/auth/admin.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <chrono>

#include "keel/auth/sessions.hpp"
#include "keel/auth/users.hpp"
#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"

namespace keel::auth {

namespace json = boost::json;

namespace {

const std::string kSelectUser = "SELECT " + kUserColumns + " FROM users WHERE id = $1";

// A LIKE pattern that finds `text` anywhere, its own '%', '_' and '\' taken literally (ESCAPE '\').
std::string contains_pattern(std::string_view text) {
  std::string out = "%";
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') out += '\\';
    out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return out + "%";
}

json::array roles_json(const std::vector<std::string>& roles) {
  json::array a;
  for (const auto& r : roles) a.emplace_back(r);
  return a;
}

}  // namespace

json::object admin_user_json(const db::Row& r) {
  json::object u = user_json(r);
  u["disabled"] = r.text(kUser["status"]) != "active";
  return u;
}

boost::asio::awaitable<AuthService::Listing> UserAdmin::list(int limit,
                                                             const std::optional<std::string>& after,
                                                             const std::optional<std::string>& query) {
  if (after && !is_uuid(*after)) throw Error::bad_request("the cursor is not one this server issued");
  if (query && (query->empty() || query->size() > 254))
    throw Error::validation({{"query", "must be 1 to 254 characters"}});
  auto rows = co_await db_.read([&](db::Session& s) {
    std::vector<db::Value> params{int64_t{limit}};
    std::string sql = "SELECT " + kUserColumns + " FROM users WHERE TRUE";
    if (after) {
      params.emplace_back(*after);
      sql += " AND id > $" + std::to_string(params.size());
    }
    if (query) {
      params.emplace_back(contains_pattern(*query));
      sql += " AND email_lower LIKE $" + std::to_string(params.size()) + " ESCAPE '\\'";
    }
    return s.query(sql + " ORDER BY id LIMIT $1", params);
  });
  json::array items;
  std::string last;
  for (const auto& r : rows.rows) {
    last = r.text(kUser["id"]);
    items.push_back(admin_user_json(r));
  }
  co_return AuthService::Listing{std::move(items), last};
}

boost::asio::awaitable<json::object> UserAdmin::get(const std::string& id) {
  if (!is_uuid(id)) throw Error::not_found("no such user");
  const db::Result rows = co_await db_.read([&](db::Session& s) { return s.query(kSelectUser, {id}); });
  if (rows.empty()) throw Error::not_found("no such user");
  co_return admin_user_json(rows.rows[0]);
}

boost::asio::awaitable<json::object> UserAdmin::update(const Principal& who, const std::string& id,
                                                       std::optional<bool> disabled,
                                                       std::optional<std::vector<std::string>> roles,
                                                       const ClientInfo& client) {
  if (!is_uuid(id)) throw Error::not_found("no such user");
  if (roles) {
    for (const auto& r : *roles)
      if (r != "user" && r != "admin") throw Error::validation({{"roles", "each role is user or admin"}});
    std::sort(roles->begin(), roles->end(), [](const std::string& a, const std::string& b) {
      return (a == "user") > (b == "user");  // "user" first, as registration writes them
    });
    roles->erase(std::unique(roles->begin(), roles->end()), roles->end());
    if (std::find(roles->begin(), roles->end(), "user") == roles->end())
      throw Error::validation({{"roles", "must include user"}});
  }
  if (id == who.user_id && disabled.value_or(false))
    throw Error::validation({{"disabled", "an admin cannot disable their own account"}});
  if (id == who.user_id && roles && std::find(roles->begin(), roles->end(), "admin") == roles->end())
    throw Error::validation({{"roles", "an admin cannot give up their own admin role"}});
  std::vector<std::pair<std::string, std::string>> revoked;
  auto user = co_await db_.write([&](db::Session& s) {
    auto cur = s.query(kSelectUser, {id});
    if (cur.empty()) throw Error::not_found("no such user");
    const std::string now = now_rfc3339();
    const bool was_disabled = cur.rows[0].text(kUser["status"]) != "active";
    if (disabled && *disabled != was_disabled) {
      s.query("UPDATE users SET status = $2, updated_at = $3 WHERE id = $1",
              {id, std::string(*disabled ? "disabled" : "active"), now});
      outbox_.append(s, {*disabled ? "keel.auth.user.disabled" : "keel.auth.user.enabled", kSource, id,
                         json::object{{"user_id", id}, {"by", who.user_id}}, client.traceparent});
      if (*disabled)
        revoked = revoke_where(s, outbox_, "user_id = $1", {id}, "user_disabled", id, client.traceparent,
                               who.user_id);
    }
    if (roles) {
      const std::string text = json::serialize(roles_json(*roles));
      if (text != cur.rows[0].text(kUser["roles"])) {
        s.query("UPDATE users SET roles = $2, updated_at = $3 WHERE id = $1", {id, text, now});
        outbox_.append(s, {"keel.auth.user.roles_changed", kSource, id,
                           json::object{{"user_id", id}, {"roles", roles_json(*roles)}, {"by", who.user_id}},
                           client.traceparent});
      }
    }
    return admin_user_json(s.query(kSelectUser, {id}).rows.at(0));
  });
  revoke_locally(verifier_, revoked);
  co_return user;
}

boost::asio::awaitable<void> UserAdmin::end_sessions(const Principal& who, const std::string& id,
                                                     const ClientInfo& client) {
  if (!is_uuid(id)) throw Error::not_found("no such user");
  auto revoked = co_await db_.write([&](db::Session& s) {
    if (s.query("SELECT 1 FROM users WHERE id = $1", {id}).empty()) throw Error::not_found("no such user");
    return revoke_where(s, outbox_, "user_id = $1", {id}, "revoked_by_admin", id, client.traceparent,
                        who.user_id);
  });
  revoke_locally(verifier_, revoked);
}

boost::asio::awaitable<bool> UserAdmin::has_admin() {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  // Yes is remembered for 10 s; no for 1 s, so the page that explains the first admin goes soon after.
  const int64_t answer = admin_answer_.load(std::memory_order_acquire);
  if (answer >= 0) {
    const bool had = answer & 1;
    if (now - answer / 2 < (had ? 10000 : 1000)) co_return had;
  }
  const bool found = co_await db_.read([](db::Session& s) {
    return !s.query(
                 s.dialect() == db::Dialect::Postgres
                     ? "SELECT 1 FROM users WHERE status = 'active' AND roles @> '[\"admin\"]'::jsonb LIMIT 1"
                     : "SELECT 1 FROM users WHERE status = 'active' AND EXISTS (SELECT 1 FROM "
                       "json_each(users.roles) WHERE value = 'admin') LIMIT 1")
                .empty();
  });
  // Kept unless a read that began later has already answered (reads may finish out of order).
  const int64_t mine = now * 2 + (found ? 1 : 0);
  int64_t seen = admin_answer_.load(std::memory_order_relaxed);
  while (seen / 2 <= now && !admin_answer_.compare_exchange_weak(seen, mine, std::memory_order_release)) {
  }
  co_return found;
}

}  // namespace keel::auth
