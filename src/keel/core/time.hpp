#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keel {

using SystemTime = std::chrono::system_clock::time_point;

// RFC 3339 UTC with milliseconds: 2026-11-25T10:00:00.123Z
std::string format_rfc3339(SystemTime t);
std::string now_rfc3339();
int64_t unix_millis(SystemTime t);
// Accepts RFC 3339 ("T" or space separator, optional fraction, "Z" or ±hh[:mm] offset), which covers both
// what we write and what PostgreSQL's timestamptz text output looks like.
std::optional<SystemTime> parse_rfc3339(std::string_view s);
// Normalizes a database timestamp to our RFC 3339 form; returns the input unchanged if unparsable.
std::string normalize_timestamp(std::string_view s);

}  // namespace keel
