#include "keel/auth/cli.hpp"

#include <boost/json/serialize.hpp>
#include <iostream>
#include <regex>

#include "keel/auth/keys.hpp"
#include "keel/auth/service.hpp"
#include "keel/auth/verifier.hpp"
#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/db/migrations.hpp"
#include "keel/module/module.hpp"

namespace keel::auth {

namespace {

// A command that creates no user runs no hooks; its events (a service token's) go through an outbox of its
// own, numbered on PostgreSQL by a serving process's sweep.
const module::Outbox& own_outbox() {
  static const module::Outbox outbox;
  return outbox;
}
const module::Hooks& no_hooks() {
  static const module::Hooks hooks;
  return hooks;
}

// The pieces of the auth module a command needs, over a migrated database.
struct Offline {
  std::unique_ptr<db::Database> db;
  AuthSettings settings;
  std::unique_ptr<TokenIssuer> issuer;
  std::unique_ptr<TokenVerifier> verifier;
  std::unique_ptr<PasswordHasher> hasher;
  std::unique_ptr<AuthService> service;

  explicit Offline(const Config& config) : Offline(config, own_outbox(), no_hooks()) {}
  Offline(const Config& config, const module::Outbox& outbox, const module::Hooks& hooks) {
    db = db::open_database(config);
    db::migrate(*db);
    settings = AuthSettings::from(config);
    issuer = std::make_unique<TokenIssuer>(*db, settings, fleet_master_key(*db, settings));
    issuer->load_sync();
    verifier = std::make_unique<TokenVerifier>(
        *db, VerifierSettings{settings.issuer, settings.audience, settings.access_ttl_seconds, 30});
    hasher = std::make_unique<PasswordHasher>(settings.argon2_memory_kib, settings.argon2_iterations, 1, 1);
    service = std::make_unique<AuthService>(*db, settings, *issuer, *verifier, *hasher, outbox, hooks);
  }
  ~Offline() { db->close(); }
};

int report(const Error& e) {
  std::cerr << "keel: " << e.detail();
  for (const auto& f : e.errors()) std::cerr << " (" << f.field << " " << f.message << ")";
  std::cerr << "\n";
  return e.status() == 409 ? 3 : 2;
}

}  // namespace

int user_create_command(const Config& config, const module::Outbox& outbox, const module::Hooks& hooks,
                        const std::string& email, bool admin) {
  std::string password;
  std::getline(std::cin, password);
  if (!password.empty() && password.back() == '\r') password.pop_back();
  try {
    Offline o(config, outbox, hooks);
    auto user = o.service->create_user_sync(NewUser{email, password, std::nullopt, admin});
    std::cout << boost::json::serialize(user) << "\n";
    if (admin) std::cerr << "keel: the admin console: " << config.public_base() << "/admin/\n";
    return 0;
  } catch (const Error& e) {
    return report(e);
  }
}

int token_create_command(const Config& config, const std::vector<ModuleSpec>& modules,
                         const std::string& service, long long ttl_seconds) {
  static const std::regex name("[a-z][a-z0-9-]{0,62}");
  if (!std::regex_match(service, name)) {
    std::cerr << "keel: --service: a module name matches [a-z][a-z0-9-]{0,62}\n";
    return 2;
  }
  // keel's own module names are keel's: a token bound to one could register an instance of it, and the
  // gateway would hand it users' Authorization headers (or login bodies, for auth).
  if (module::named(modules, service)) {
    std::cerr << "keel: --service: '" << service
              << "' is one of keel's own modules, whose instances only keel's processes register; name the "
                 "third-party module this token is for\n";
    return 2;
  }
  Offline o(config);
  const long long ttl = ttl_seconds > 0 ? ttl_seconds : o.settings.service_token_ttl_seconds;
  std::cout << o.service->create_service_token_sync(service, ttl) << "\n";
  return 0;
}

int token_revoke_command(const Config& config, const std::string& id) {
  if (!is_uuid(id)) {
    std::cerr << "keel: --id: expected the token's sid (a UUID)\n";
    return 2;
  }
  Offline o(config);
  const auto n = o.db->write_sync([&](db::Session& s) {
    const std::string now = now_rfc3339();
    return s
        .query(
            "UPDATE service_tokens SET revoked_at = $2, updated_at = $2 WHERE id = $1 AND revoked_at IS NULL",
            {id, now})
        .affected;
  });
  if (n == 0) {
    std::cerr << "keel: no live service token with that id\n";
    return 3;
  }
  std::cout << "revoked " << id << "\n";
  return 0;
}

int keys_rotate_command(const Config& config) {
  Offline o(config);
  auto key = o.db->write_sync([&](db::Session& s) {
    return rotate_keys(s, o.issuer->master(), o.settings.alg, o.settings.access_ttl_seconds);
  });
  std::cout << "new signing key " << key.kid() << " (" << alg_name(key.alg()) << ")\n";
  return 0;
}

}  // namespace keel::auth
