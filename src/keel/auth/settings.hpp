#pragma once
// The [auth] table of the config file (or KEEL_AUTH_* variables).
#include <cstdint>
#include <filesystem>
#include <string>

#include "keel/auth/jws.hpp"
#include "keel/core/settings.hpp"

namespace keel {
struct Config;
}

namespace keel::auth {

// The [auth] table (KEEL_AUTH_* in the environment), declared once; AuthSettings::from reads it.
namespace settings {
using Kind = ModuleSetting::Kind;
inline constexpr ModuleSetting issuer{"auth.issuer", Kind::Text, "keel", 0, 0, "the tokens' iss"};
inline constexpr ModuleSetting audience{"auth.audience", Kind::Text, "keel", 0, 0, "the tokens' aud"};
inline constexpr ModuleSetting signing_alg{
    "auth.signing_alg", Kind::Text, "EdDSA", 0, 0, "EdDSA or ES256, for keys created from now on"};
inline constexpr ModuleSetting access_ttl_seconds{
    "auth.access_ttl_seconds", Kind::Integer, "900", 30, 86400, "an access token's lifetime"};
inline constexpr ModuleSetting session_ttl_seconds{
    "auth.session_ttl_seconds", Kind::Integer, "2592000", 60, 365 * 86400, "a session's absolute lifetime"};
inline constexpr ModuleSetting session_idle_seconds{"auth.session_idle_seconds",
                                                    Kind::Integer,
                                                    "604800",
                                                    60,
                                                    365 * 86400,
                                                    "a session not refreshed this long ends"};
inline constexpr ModuleSetting refresh_reuse_window_seconds{
    "auth.refresh_reuse_window_seconds",
    Kind::Integer,
    "10",
    0,
    300,
    "a rotated refresh token presented again within this answers as the first time (a client's retry)"};
inline constexpr ModuleSetting ended_sessions_kept_days{
    "auth.ended_sessions_kept_days",
    Kind::Integer,
    "30",
    0,
    3650,
    "an ended (expired, revoked) session stays listed this long, then goes"};
inline constexpr ModuleSetting password_min{
    "auth.password_min", Kind::Integer, "8", 1, 1024, "the shortest password, in characters"};
inline constexpr ModuleSetting password_max{
    "auth.password_max", Kind::Integer, "1024", 8, 4096, "the longest password, in characters"};
inline constexpr ModuleSetting argon2_memory_kib{"auth.argon2_memory_kib",
                                                 Kind::Integer,
                                                 "19456",
                                                 19456,
                                                 4 * 1024 * 1024,
                                                 "argon2id memory, at least OWASP's 19 MiB"};
inline constexpr ModuleSetting argon2_iterations{"auth.argon2_iterations", Kind::Integer, "2", 2, 100,
                                                 "argon2id passes"};
inline constexpr ModuleSetting login_max_failures{"auth.login_max_failures",
                                                  Kind::Integer,
                                                  "10",
                                                  1,
                                                  1000000,
                                                  "failed logins per account and window before 429"};
inline constexpr ModuleSetting login_max_failures_per_ip{
    "auth.login_max_failures_per_ip", Kind::Integer, "100", 1, 1000000, "and per client address"};
inline constexpr ModuleSetting login_window_seconds{
    "auth.login_window_seconds", Kind::Integer, "900", 1, 86400, "the window those failures are counted in"};
inline constexpr ModuleSetting hash_threads{
    "auth.hash_threads", Kind::Integer, "0", 0, 256, "threads hashing passwords (0: one per core)"};
inline constexpr ModuleSetting hash_queue{"auth.hash_queue",
                                          Kind::Integer,
                                          "64",
                                          1,
                                          100000,
                                          "hashes waiting beyond the threads; past it, 503 with Retry-After"};
inline constexpr ModuleSetting service_token_ttl_seconds{
    "auth.service_token_ttl_seconds",       Kind::Integer, "31536000", 60, 10 * 365 * 86400,
    "a service token's lifetime by default"};
inline constexpr ModuleSetting master_key_file{
    "auth.master_key_file",
    Kind::Text,
    "",
    0,
    0,
    "the file holding the master key (default <data_dir>/master.key, created with mode 0600)"};
inline constexpr ModuleSetting master_key{"auth.master_key",
                                          Kind::Text,
                                          "",
                                          0,
                                          0,
                                          "the master key itself, base64; better KEEL_AUTH_MASTER_KEY",
                                          true};

inline const SettingTable& table() {
  static const SettingTable t{"auth",
                              {&issuer,
                               &audience,
                               &signing_alg,
                               &access_ttl_seconds,
                               &session_ttl_seconds,
                               &session_idle_seconds,
                               &refresh_reuse_window_seconds,
                               &ended_sessions_kept_days,
                               &password_min,
                               &password_max,
                               &argon2_memory_kib,
                               &argon2_iterations,
                               &login_max_failures,
                               &login_max_failures_per_ip,
                               &login_window_seconds,
                               &hash_threads,
                               &hash_queue,
                               &service_token_ttl_seconds,
                               &master_key_file,
                               &master_key}};
  return t;
}
}  // namespace settings

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
