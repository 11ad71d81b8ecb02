// A request target's query as handlers read it: pagination (?limit=, the opaque ?cursor=), integers, times,
// durations (?wait=). Anything but a keel::Error (400 or 422) escaping is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "keel/core/error.hpp"
#include "keel/http/duration.hpp"
#include "keel/http/pagination.hpp"

namespace {
std::string_view no_header(const void*, std::string_view) { return {}; }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string target(reinterpret_cast<const char*>(data), size);
  keel::http::Request req(nullptr, &no_header);
  req.target = target;
  const size_t q = target.find('?');
  req.path = std::string_view(target).substr(0, q);
  req.query = q == std::string::npos ? std::string_view() : std::string_view(target).substr(q + 1);
  try {
    const auto page = keel::http::parse_page(req);
    if (page.limit < 1 || page.limit > 500) __builtin_trap();
    if (page.after) (void)keel::http::encode_cursor(*page.after);
  } catch (const keel::Error& e) {
    if (e.status() != 400 && e.status() != 422) __builtin_trap();
  }
  try {
    (void)req.query_param("cursor");
    (void)req.query_int("after", 0, INT64_MAX);
    (void)req.query_time("since");
    if (auto w = req.query_param("wait"))
      if (auto d = keel::http::parse_duration(*w, std::chrono::seconds(60));
          d && *d > std::chrono::seconds(60))
        __builtin_trap();
  } catch (const keel::Error& e) {
    if (e.status() != 400 && e.status() != 422) __builtin_trap();
  }
  return 0;
}
