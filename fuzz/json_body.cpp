// Request bodies: parsed as a JSON object and checked field by field as keel's handlers do. Anything but a
// keel::Error (400 or 422) escaping is a bug.
#include "keel/http/json_body.hpp"

#include <boost/json.hpp>
#include <cstddef>
#include <cstdint>
#include <string>

#include "keel/core/error.hpp"

namespace {
std::string_view no_header(const void*, std::string_view) { return {}; }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  keel::http::Request req(nullptr, &no_header);
  req.body.assign(reinterpret_cast<const char*>(data), size);
  try {
    const boost::json::object body = keel::http::parse_json_object(req);
    keel::http::Validator v(body);
    (void)v.required_string("email", 3, 254);
    (void)v.optional_string("display_name", 0, 200);
    (void)v.optional_int("quantity", 1, int64_t{1} << 50);
    (void)v.optional_object("metadata");
    (void)v.optional_string("namespace", 1, 64);
    for (const auto& kv : body) {
      (void)keel::http::contains_nul(kv.value());
      if (kv.value().is_string()) (void)keel::http::utf8_length(kv.value().as_string());
      (void)boost::json::serialize(kv.value());
    }
    v.check();
  } catch (const keel::Error& e) {
    if (e.status() != 400 && e.status() != 413 && e.status() != 415 && e.status() != 422) __builtin_trap();
  }
  return 0;
}
