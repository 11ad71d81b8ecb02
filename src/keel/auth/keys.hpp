#pragma once
// Signing keys in the database: public JWKs in the clear, private keys sealed under the master key.
#include <optional>
#include <string>
#include <vector>

#include "keel/auth/crypto.hpp"
#include "keel/auth/jws.hpp"
#include "keel/auth/settings.hpp"
#include "keel/db/database.hpp"

namespace keel::auth {

struct StoredKey {
  VerifyKey public_key;
  std::string status;  // active | retired
  std::string created_at;
  std::string sealed_private;
};

// Keys the JWKS publishes: active ones and retired ones whose tokens may still be live.
std::vector<StoredKey> load_published_keys(db::Session& s);
// Creates an active key; returns it.
SigningKey create_key(db::Session& s, const MasterKey& master, Alg alg);
// Retires the active keys (published until every token they signed has expired) and creates a new one.
SigningKey rotate_keys(db::Session& s, const MasterKey& master, Alg alg, int64_t access_ttl_seconds);
SigningKey unseal_key(const StoredKey& key, const MasterKey& master);

// This process's master key: [auth] master_key (KEEL_AUTH_MASTER_KEY) when set, else the key file. A key file
// is created only while the database holds no sealed signing key: a process that would seal nothing the fleet
// can open stops instead. A key that does not open the database's signing keys is a ConfigError naming where
// the key was read and how to give every process the same one.
MasterKey fleet_master_key(db::Database& db, const AuthSettings& settings);

}  // namespace keel::auth
