#pragma once
// The [events] table (KEEL_EVENTS_* in the environment), declared once.
#include "keel/core/settings.hpp"

namespace keel::events::settings {

using Kind = ModuleSetting::Kind;
inline constexpr ModuleSetting retention_days{
    "events.retention_days", Kind::Integer, "30", 0, 36500, "events older than this go (0: kept)"};

inline constexpr ModuleSetting streams_per_caller{
    "events.streams_per_caller",
    Kind::Integer,
    "100",
    0,
    100000,
    "open streams (GET /v1/stream) one token's subject may hold in this process (0: no cap)"};

inline const SettingTable& table() {
  static const SettingTable t{"events", {&retention_days, &streams_per_caller}};
  return t;
}

}  // namespace keel::events::settings
