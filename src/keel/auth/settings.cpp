#include "keel/auth/settings.hpp"

#include <charconv>

#include "keel/auth/crypto.hpp"
#include "keel/core/config.hpp"

namespace keel::auth {

namespace {
template <class T>
void read_int(const Config& c, const char* key, T& out, int64_t lo, int64_t hi) {
  const double v = module_number(c, std::string("auth.") + key, static_cast<double>(out),
                                 static_cast<double>(lo), static_cast<double>(hi));
  if (v != static_cast<double>(static_cast<int64_t>(v)))
    throw ConfigError(std::string("auth.") + key + ": expected a whole number");
  out = static_cast<T>(v);
}
}  // namespace

AuthSettings AuthSettings::from(const Config& c) {
  AuthSettings s;
  auto str = [&](const char* key) -> const std::string* {
    auto it = c.module_settings.find(std::string("auth.") + key);
    return it == c.module_settings.end() ? nullptr : &it->second;
  };
  if (auto v = str("issuer")) s.issuer = *v;
  if (auto v = str("audience")) s.audience = *v;
  if (auto v = str("signing_alg")) {
    auto alg = parse_alg(*v);
    if (!alg) throw ConfigError("auth.signing_alg: expected EdDSA or ES256, got '" + *v + "'");
    s.alg = *alg;
  }
  read_int(c, "access_ttl_seconds", s.access_ttl_seconds, 30, 86400);
  read_int(c, "session_ttl_seconds", s.session_ttl_seconds, 60, 365 * 86400);
  read_int(c, "session_idle_seconds", s.session_idle_seconds, 60, 365 * 86400);
  read_int(c, "refresh_reuse_window_seconds", s.refresh_reuse_window_seconds, 0, 300);
  read_int(c, "ended_sessions_kept_days", s.ended_sessions_kept_days, 0, 3650);
  read_int(c, "password_min", s.password_min, 1, 1024);
  read_int(c, "password_max", s.password_max, 8, 4096);
  read_int(c, "argon2_memory_kib", s.argon2_memory_kib, 19456, 4 * 1024 * 1024);
  read_int(c, "argon2_iterations", s.argon2_iterations, 2, 100);
  read_int(c, "login_max_failures", s.login_max_failures, 1, 1000000);
  read_int(c, "login_max_failures_per_ip", s.login_max_failures_per_ip, 1, 1000000);
  read_int(c, "login_window_seconds", s.login_window_seconds, 1, 86400);
  read_int(c, "hash_threads", s.hash_threads, 0, 256);
  read_int(c, "hash_queue", s.hash_queue, 1, 100000);
  read_int(c, "service_token_ttl_seconds", s.service_token_ttl_seconds, 60, 10 * 365 * 86400);
  if (s.password_min > s.password_max) throw ConfigError("auth.password_min: greater than auth.password_max");
  s.master_key_file = c.data_dir / "master.key";
  if (auto v = str("master_key_file")) {
    std::filesystem::path p(*v);
    s.master_key_file =
        p.is_absolute() ? p : (c.config_file.empty() ? c.data_dir : c.config_file.parent_path()) / p;
  }
  if (auto v = str("master_key")) {
    if (!parse_master_key(*v))
      throw ConfigError("auth.master_key (KEEL_AUTH_MASTER_KEY): expected the base64 of 32 bytes");
    s.master_key = *v;
  }
  return s;
}

}  // namespace keel::auth
