#include "keel/http/duration.hpp"

#include <charconv>

namespace keel::http {

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text,
                                                        std::chrono::milliseconds max) {
  int64_t n = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), n);
  // Bounded before it is scaled: a count of seconds or minutes near int64's end would overflow.
  if (r.ec != std::errc() || n < 0 || n > 3600000) return std::nullopt;
  const std::string_view unit(r.ptr, text.data() + text.size() - r.ptr);
  int64_t ms = 0;
  if (unit == "ms")
    ms = n;
  else if (unit == "s" || unit.empty())
    ms = n * 1000;
  else if (unit == "m")
    ms = n * 60000;
  else
    return std::nullopt;
  if (ms > max.count()) return std::nullopt;
  return std::chrono::milliseconds(ms);
}

}  // namespace keel::http
