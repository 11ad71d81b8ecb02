#include "keel/auth/keys.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <stdexcept>

#include "keel/core/config.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"

namespace keel::auth {

std::vector<StoredKey> load_published_keys(db::Session& s) {
  auto r = s.query(
      "SELECT public_jwk, status, created_at, private_key FROM signing_keys "
      "WHERE status = 'active' OR expires_at > $1 ORDER BY created_at",
      {now_rfc3339()});
  std::vector<StoredKey> out;
  for (const auto& row : r.rows) {
    boost::system::error_code ec;
    auto jwk = boost::json::parse(row.text(0), ec);
    if (ec || !jwk.is_object()) continue;
    auto key = VerifyKey::from_jwk(jwk.as_object());
    if (!key) continue;
    out.push_back({std::move(*key), row.text(1), row.time(2), row.text(3)});
  }
  return out;
}

SigningKey create_key(db::Session& s, const MasterKey& master, Alg alg) {
  const std::string kid = uuid_v7();
  SigningKey key = SigningKey::generate(alg, kid);
  const std::string now = now_rfc3339();
  s.query(
      "INSERT INTO signing_keys (id, alg, public_jwk, private_key, status, created_at, updated_at) "
      "VALUES ($1, $2, $3, $4, 'active', $5, $5)",
      {kid, std::string(alg_name(alg)), boost::json::serialize(key.public_key().jwk()),
       base64url_encode(seal(master, key.private_bytes(), kid)), now});
  return key;
}

SigningKey rotate_keys(db::Session& s, const MasterKey& master, Alg alg, int64_t access_ttl_seconds) {
  const auto now = std::chrono::system_clock::now();
  const std::string access_horizon = format_rfc3339(now + std::chrono::seconds(access_ttl_seconds + 60));
  // A retired key stays published until its access tokens and its service tokens have all expired.
  auto active = s.query("SELECT id FROM signing_keys WHERE status = 'active'");
  for (const auto& row : active.rows) {
    const std::string kid = row.text(0);
    auto svc =
        s.query("SELECT MAX(expires_at) FROM service_tokens WHERE kid = $1 AND revoked_at IS NULL", {kid});
    std::string until = access_horizon;
    if (!svc.rows.empty() && !svc.rows[0].is_null(0) && svc.rows[0].time(0) > until)
      until = svc.rows[0].time(0);
    s.query(
        "UPDATE signing_keys SET status = 'retired', retired_at = $2, expires_at = $3, updated_at = $2 "
        "WHERE id = $1",
        {kid, format_rfc3339(now), until});
  }
  return create_key(s, master, alg);
}

SigningKey unseal_key(const StoredKey& key, const MasterKey& master) {
  auto sealed = base64url_decode(key.sealed_private);
  if (!sealed) throw std::runtime_error("signing key " + key.public_key.kid() + " is malformed");
  auto raw = open(master, *sealed, key.public_key.kid());
  if (!raw)
    throw std::runtime_error(
        "signing key " + key.public_key.kid() +
        " cannot be decrypted: the master key differs from the one that sealed it (every process "
        "that runs auth must use the same master key; see [auth] master_key_file and "
        "KEEL_AUTH_MASTER_KEY)");
  return SigningKey::from_private(key.public_key.alg(), key.public_key.kid(), *raw);
}

}  // namespace keel::auth

namespace keel::auth {

namespace {
std::string how_to_share(const AuthSettings& s) {
  return "every keel process that runs auth (and every `keel user`/`keel token` command) must use the same "
         "master key: copy the master.key file the other processes use to " +
         s.master_key_file.string() +
         ", point [auth] master_key_file at it, or pass its contents to every process as "
         "KEEL_AUTH_MASTER_KEY";
}
}  // namespace

MasterKey fleet_master_key(db::Database& db, const AuthSettings& settings) {
  // One sealed key is enough to tell whether a master key is the fleet's.
  const auto sealed = db.read_sync([](db::Session& s) {
    auto r = s.query("SELECT id, private_key FROM signing_keys ORDER BY created_at DESC LIMIT 1");
    return r.empty() ? std::optional<std::pair<std::string, std::string>>()
                     : std::make_pair(r.rows[0].text(0), r.rows[0].text(1));
  });
  std::optional<MasterKey> key;
  std::string origin;
  if (!settings.master_key.empty()) {
    key = parse_master_key(settings.master_key);  // checked when the settings were read
    origin = "KEEL_AUTH_MASTER_KEY ([auth] master_key)";
  } else {
    key = read_master_key_file(settings.master_key_file);
    origin = settings.master_key_file.string();
    if (!key) {
      if (sealed)
        throw ConfigError("auth: no master key at " + origin + ", but the database (" + db.describe() +
                          ") already holds signing keys sealed with one; " + how_to_share(settings));
      key = create_master_key_file(settings.master_key_file);
    }
  }
  if (sealed) {
    auto bytes = base64url_decode(sealed->second);
    if (!bytes || !open(*key, *bytes, sealed->first))
      throw ConfigError("auth: the master key read from " + origin + " does not open the signing keys in " +
                        db.describe() + "; " + how_to_share(settings));
  }
  return *key;
}

}  // namespace keel::auth
