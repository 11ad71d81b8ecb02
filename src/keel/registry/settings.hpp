#pragma once
// The [registry] table (KEEL_REGISTRY_* in the environment): every setting about registration, declared once.
#include "keel/core/settings.hpp"

namespace keel::registry::settings {

using Kind = ModuleSetting::Kind;
inline constexpr ModuleSetting check_interval_ms{"registry.check_interval_ms",
                                                 Kind::Integer,
                                                 "1000",
                                                 100,
                                                 60000,
                                                 "TTL expiry and active health checks, in milliseconds"};
inline constexpr ModuleSetting grace_seconds{
    "registry.grace_seconds", Kind::Integer, "30", 0, 86400, "a critical instance is removed after this"};
inline constexpr ModuleSetting default_ttl_seconds{
    "registry.default_ttl_seconds", Kind::Integer, "30", 1, 86400, "an instance's TTL when it names none"};
inline constexpr ModuleSetting self_ttl_seconds{
    "registry.self_ttl_seconds", Kind::Integer, "5", 2, 3600, "this process's own instances: their TTL"};
inline constexpr ModuleSetting self_heartbeat_ms{
    "registry.self_heartbeat_ms",
    Kind::Integer,
    "1000",
    100,
    1800000,
    "and their heartbeat period, in milliseconds (at most half the TTL)"};
inline constexpr ModuleSetting advertise{
    "registry.advertise",
    Kind::Text,
    "",
    0,
    0,
    "the address other processes reach this one at (default: the listen address, or the host name)"};
inline constexpr ModuleSetting deny{
    "registry.deny",
    Kind::Text,
    "",
    0,
    0,
    "addresses or CIDRs keel never sends requests to, besides those always refused (comma-separated)"};

inline const SettingTable& table() {
  static const SettingTable t{"registry",
                              {&check_interval_ms, &grace_seconds, &default_ttl_seconds, &self_ttl_seconds,
                               &self_heartbeat_ms, &advertise, &deny}};
  return t;
}

}  // namespace keel::registry::settings
