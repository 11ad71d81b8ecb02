#include "keel/auth/settings.hpp"

#include <charconv>

#include "keel/auth/crypto.hpp"
#include "keel/core/config.hpp"

namespace keel::auth {

AuthSettings AuthSettings::from(const Config& c) {
  namespace k = settings;
  AuthSettings s;
  s.issuer = k::issuer.text(c);
  s.audience = k::audience.text(c);
  const std::string alg = k::signing_alg.text(c);
  if (auto parsed = parse_alg(alg))
    s.alg = *parsed;
  else
    throw ConfigError("[auth] signing_alg: expected EdDSA or ES256, got '" + alg + "'");
  s.access_ttl_seconds = k::access_ttl_seconds.integer(c);
  s.session_ttl_seconds = k::session_ttl_seconds.integer(c);
  s.session_idle_seconds = k::session_idle_seconds.integer(c);
  s.refresh_reuse_window_seconds = k::refresh_reuse_window_seconds.integer(c);
  s.ended_sessions_kept_days = k::ended_sessions_kept_days.integer(c);
  s.password_min = static_cast<size_t>(k::password_min.integer(c));
  s.password_max = static_cast<size_t>(k::password_max.integer(c));
  s.argon2_memory_kib = static_cast<uint32_t>(k::argon2_memory_kib.integer(c));
  s.argon2_iterations = static_cast<uint32_t>(k::argon2_iterations.integer(c));
  s.login_max_failures = static_cast<int>(k::login_max_failures.integer(c));
  s.login_max_failures_per_ip = static_cast<int>(k::login_max_failures_per_ip.integer(c));
  s.login_window_seconds = k::login_window_seconds.integer(c);
  s.hash_threads = static_cast<int>(k::hash_threads.integer(c));
  s.hash_queue = static_cast<int>(k::hash_queue.integer(c));
  s.service_token_ttl_seconds = k::service_token_ttl_seconds.integer(c);
  if (s.password_min > s.password_max)
    throw ConfigError("[auth] password_min: greater than [auth] password_max");
  s.master_key_file = c.data_dir / "master.key";
  if (const std::string v = k::master_key_file.text(c); !v.empty()) {
    std::filesystem::path p(v);
    s.master_key_file =
        p.is_absolute() ? p : (c.config_file.empty() ? c.data_dir : c.config_file.parent_path()) / p;
  }
  if (std::string v = k::master_key.text(c); !v.empty()) {
    if (!parse_master_key(v))
      throw ConfigError("[auth] master_key (KEEL_AUTH_MASTER_KEY): expected the base64 of 32 bytes");
    s.master_key = std::move(v);
  }
  return s;
}

}  // namespace keel::auth
