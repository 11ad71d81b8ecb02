#pragma once
#include <time.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace keel {

// The monotonic clock as the kernel last ticked it (CLOCK_MONOTONIC_COARSE: a few milliseconds behind at
// most, and a memory read instead of a clock read): for deadlines and idle times measured in seconds, which
// every request sets several of. Same epoch as std::chrono::steady_clock, so the two compare.
inline std::chrono::steady_clock::time_point coarse_steady_now() {
  timespec ts{};
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0) return std::chrono::steady_clock::now();
  return std::chrono::steady_clock::time_point(std::chrono::seconds(ts.tv_sec) +
                                               std::chrono::nanoseconds(ts.tv_nsec));
}
// Unix seconds from the coarse real-time clock (token expiry checks).
inline int64_t coarse_unix_seconds() {
  timespec ts{};
  if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0)
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  return static_cast<int64_t>(ts.tv_sec);
}

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
