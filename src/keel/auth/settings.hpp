#pragma once
// The [auth] table of the config file (or KEEL_AUTH_* variables).
#include <cstdint>
#include <filesystem>
#include <string>

#include "keel/auth/jws.hpp"

namespace keel {
struct Config;
}

namespace keel::auth {

struct AuthSettings {
  std::string issuer = "keel";
  std::string audience = "keel";
  Alg alg = Alg::EdDSA;
  int64_t access_ttl_seconds = 900;
  int64_t session_ttl_seconds = 30 * 86400;
  int64_t session_idle_seconds = 7 * 86400;
  int64_t refresh_reuse_window_seconds = 10;
  // Sessions that ended (expired or revoked) stay listed this long, then go with their refresh tokens.
  int64_t ended_sessions_kept_days = 30;
  size_t password_min = 8;
  size_t password_max = 1024;
  uint32_t argon2_memory_kib = 19456;  // OWASP's floor: m=19 MiB, t=2, p=1
  uint32_t argon2_iterations = 2;
  int login_max_failures = 10;  // per account, per window
  int login_max_failures_per_ip = 100;
  int64_t login_window_seconds = 900;
  int hash_threads = 0;  // 0: one per core
  int hash_queue = 64;   // waiting hashes beyond the threads; past it, 503 + Retry-After
  int64_t service_token_ttl_seconds = 365 * 86400;
  std::filesystem::path master_key_file;  // default <data_dir>/master.key
  // The master key itself, base64 ([auth] master_key, or KEEL_AUTH_MASTER_KEY as fleets pass secrets); when
  // set, master_key_file is not read. A secret: never logged.
  std::string master_key;

  static AuthSettings from(const Config& config);
};

}  // namespace keel::auth
