#include "keel/auth/issuer.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/array.hpp>
#include <stdexcept>

#include "keel/auth/keys.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/time.hpp"

namespace keel::auth {

namespace {
constexpr auto kPublishBeforeUse = std::chrono::seconds(10);
}

TokenIssuer::TokenIssuer(db::Database& db, AuthSettings settings, MasterKey master)
    : db_(db), settings_(std::move(settings)), master_(master) {}

void TokenIssuer::load(db::Session& s) {
  std::vector<std::pair<std::string, SigningKey>> keys;
  std::vector<std::string> active;
  for (const auto& k : load_published_keys(s)) {
    keys.emplace_back(k.created_at, unseal_key(k, master_));
    if (k.status == "active") active.push_back(k.public_key.kid());
  }
  std::unique_lock lk(mu_);
  keys_ = std::move(keys);
  active_ = std::move(active);
}

void TokenIssuer::load_sync() {
  db_.write_sync([&](db::Session& s) {
    // Processes starting together on a fresh database create one key between them, not one each.
    db::lock_for_transaction(s, db::LockKey::SigningKeys);
    if (s.query("SELECT id FROM signing_keys WHERE status = 'active' LIMIT 1").empty()) {
      create_key(s, master_, settings_.alg);
      log::info("signing key created", {{"alg", alg_name(settings_.alg)}});
    }
  });
  db_.read_sync([&](db::Session& s) { load(s); });
}

boost::asio::awaitable<void> TokenIssuer::run() {
  const auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(ex);
  for (;;) {
    timer.expires_after(std::chrono::seconds(5));
    co_await timer.async_wait(boost::asio::use_awaitable);
    try {
      co_await db_.read([this](db::Session& s) { load(s); });
    } catch (const std::exception& e) {
      log::warn("signing key refresh failed", {{"error", e.what()}});
    }
  }
}

std::string TokenIssuer::current_kid(bool active_only) const {
  std::shared_lock lk(mu_);
  if (keys_.empty()) throw std::runtime_error("no signing key loaded");
  const std::string old_enough = format_rfc3339(std::chrono::system_clock::now() - kPublishBeforeUse);
  const auto is_active = [&](const std::string& kid) {
    return std::find(active_.begin(), active_.end(), kid) != active_.end();
  };
  // The newest active key published long enough ago; else the newest key that has (a just-retired one);
  // else the one published longest (on a fresh install, the only one).
  for (auto it = keys_.rbegin(); it != keys_.rend(); ++it)
    if (is_active(it->second.kid()) && (active_only || it->first <= old_enough)) return it->second.kid();
  for (auto it = keys_.rbegin(); it != keys_.rend(); ++it)
    if (it->first <= old_enough) return it->second.kid();
  return keys_.front().second.kid();
}

std::string TokenIssuer::sign(const Claims& c, const std::string& chosen) const {
  const std::string kid = chosen.empty() ? current_kid() : chosen;
  const int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  boost::json::array roles;
  for (const auto& r : c.roles) roles.emplace_back(r);
  boost::json::object claims{{"iss", settings_.issuer}, {"sub", c.subject},    {"aud", settings_.audience},
                             {"exp", c.expires_at},     {"iat", now},          {"nbf", now},
                             {"jti", uuid_v7()},        {"sid", c.session_id}, {"roles", std::move(roles)}};
  if (!c.service.empty()) claims["svc"] = c.service;
  std::shared_lock lk(mu_);
  for (const auto& [created, key] : keys_)
    if (key.kid() == kid) return sign_jwt(key, claims);
  throw std::runtime_error("signing key vanished");
}

}  // namespace keel::auth
