#pragma once
// The [events] table (KEEL_EVENTS_* in the environment), declared once.
#include "keel/core/settings.hpp"

namespace keel::events::settings {

using Kind = ModuleSetting::Kind;
inline constexpr ModuleSetting retention_days{
    "events.retention_days", Kind::Integer, "30", 0, 36500, "events older than this go (0: kept)"};

inline const SettingTable& table() {
  static const SettingTable t{"events", {&retention_days}};
  return t;
}

}  // namespace keel::events::settings
