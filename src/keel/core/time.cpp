#include "keel/core/time.hpp"

#include <charconv>
#include <ctime>

namespace keel {

std::string format_rfc3339(SystemTime t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int millis = static_cast<int>(ms - static_cast<int64_t>(secs) * 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::string now_rfc3339() { return format_rfc3339(std::chrono::system_clock::now()); }

int64_t unix_millis(SystemTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

namespace {
bool read_int(std::string_view s, size_t& pos, size_t n, int& out) {
  if (pos + n > s.size()) return false;
  auto r = std::from_chars(s.data() + pos, s.data() + pos + n, out);
  if (r.ec != std::errc() || r.ptr != s.data() + pos + n) return false;
  pos += n;
  return true;
}
bool expect(std::string_view s, size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}
}  // namespace

std::optional<SystemTime> parse_rfc3339(std::string_view s) {
  size_t p = 0;
  int y, mo, d, h, mi, sec;
  if (!read_int(s, p, 4, y) || !expect(s, p, '-') || !read_int(s, p, 2, mo) || !expect(s, p, '-') ||
      !read_int(s, p, 2, d))
    return std::nullopt;
  if (p >= s.size() || (s[p] != 'T' && s[p] != 't' && s[p] != ' ')) return std::nullopt;
  ++p;
  if (!read_int(s, p, 2, h) || !expect(s, p, ':') || !read_int(s, p, 2, mi) || !expect(s, p, ':') ||
      !read_int(s, p, 2, sec))
    return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  int64_t micros = 0;
  if (p < s.size() && s[p] == '.') {
    ++p;
    int digits = 0;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
      if (digits < 6) micros = micros * 10 + (s[p] - '0');
      ++digits;
      ++p;
    }
    if (digits == 0) return std::nullopt;
    for (int i = digits; i < 6; ++i) micros *= 10;
  }
  int offset_minutes = 0;
  if (p < s.size() && (s[p] == 'Z' || s[p] == 'z')) {
    ++p;
  } else if (p < s.size() && (s[p] == '+' || s[p] == '-')) {
    int sign = s[p] == '-' ? -1 : 1;
    ++p;
    int oh = 0, om = 0;
    if (!read_int(s, p, 2, oh)) return std::nullopt;
    if (p < s.size() && s[p] == ':') ++p;
    if (p < s.size() && !read_int(s, p, 2, om)) return std::nullopt;
    offset_minutes = sign * (oh * 60 + om);
  } else {
    return std::nullopt;
  }
  if (p != s.size()) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  std::time_t secs = timegm(&tm);
  secs -= offset_minutes * 60;
  // system_clock counts nanoseconds in 64 bits (years 1678 to 2262): saturate rather than wrap, so "year
  // 2999" still means "after everything".
  constexpr std::time_t kLimit = 9'000'000'000;
  if (secs > kLimit) return SystemTime::max();
  if (secs < -kLimit) return SystemTime::min();
  return SystemTime(std::chrono::seconds(secs)) + std::chrono::microseconds(micros);
}

std::string normalize_timestamp(std::string_view s) {
  auto t = parse_rfc3339(s);
  return t ? format_rfc3339(*t) : std::string(s);
}

}  // namespace keel
