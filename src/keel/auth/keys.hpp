#pragma once
// Signing keys in the database: public JWKs in the clear, private keys sealed under the master key.
#include <optional>
#include <string>
#include <vector>

#include "keel/auth/crypto.hpp"
#include "keel/auth/jws.hpp"
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

}  // namespace keel::auth
