#include "keel/memory/bodies.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cmath>
#include <regex>

#include "keel/core/time.hpp"
#include "keel/memory/vector_index.hpp"

namespace keel::memory {

namespace json = boost::json;

namespace {
constexpr size_t kMaxContentBytes = 64 * 1024;
constexpr size_t kMaxMetadataBytes = 64 * 1024;
constexpr size_t kMaxTags = 32;
constexpr size_t kMaxDims = 4096;
constexpr int64_t kMaxTtlSeconds = int64_t{100} * 365 * 24 * 3600;

const std::regex kNamespace("[a-z0-9._-]{1,64}");

std::string expiry_after(int64_t seconds) {
  return format_rfc3339(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}
}  // namespace

bool valid_namespace(const std::string& ns) { return std::regex_match(ns, kNamespace); }

std::optional<std::string> read_namespace(http::Validator& v, const json::object& body) {
  auto ns = v.optional_string("namespace", 1, 64);
  if (ns && !valid_namespace(*ns)) {
    v.fail("namespace", "must match [a-z0-9._-]{1,64}");
    return std::nullopt;
  }
  return ns;
}

std::optional<std::string> read_content(http::Validator& v, const json::object& body, bool required) {
  if (required && !body.contains("content")) {
    v.fail("content", "is required");
    return std::nullopt;
  }
  auto c = v.optional_string("content", 1, kMaxContentBytes);
  if (c && c->size() > kMaxContentBytes) {
    v.fail("content", "must be at most 64 KiB");
    return std::nullopt;
  }
  if (required && body.contains("content") && body.at("content").is_null()) v.fail("content", "is required");
  return c;
}

std::optional<std::string> read_metadata(http::Validator& v, const json::object& body) {
  auto m = v.optional_object("metadata");
  if (!m) return std::nullopt;
  std::string text = json::serialize(*m);
  if (text.size() > kMaxMetadataBytes) {
    v.fail("metadata", "must be at most 64 KiB as JSON");
    return std::nullopt;
  }
  return text;
}

std::optional<std::vector<std::string>> read_tags(http::Validator& v, const json::object& body) {
  auto it = body.find("tags");
  if (it == body.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_array()) {
    v.fail("tags", "must be an array of strings");
    return std::nullopt;
  }
  const auto& arr = it->value().as_array();
  if (arr.size() > kMaxTags) {
    v.fail("tags", "must hold at most 32 tags");
    return std::nullopt;
  }
  std::vector<std::string> tags;
  for (const auto& t : arr) {
    if (!t.is_string()) {
      v.fail("tags", "must be an array of strings");
      return std::nullopt;
    }
    std::string s(t.as_string());
    const size_t len = http::utf8_length(s);
    bool control = false;
    for (unsigned char ch : s) control |= ch < 0x20 || ch == 0x7f;
    if (len == 0 || len > 64 || control) {
      v.fail("tags", "each tag must be 1 to 64 characters, without control characters");
      return std::nullopt;
    }
    if (std::find(tags.begin(), tags.end(), s) == tags.end()) tags.push_back(std::move(s));
  }
  return tags;
}

// nullopt: absent or invalid (failed on v); an engaged nullopt inside: an explicit null.
std::optional<std::optional<std::vector<float>>> read_embedding(http::Validator& v,
                                                                const json::object& body) {
  auto it = body.find("embedding");
  if (it == body.end()) return std::nullopt;
  if (it->value().is_null()) return std::optional<std::vector<float>>();
  if (!it->value().is_array() || it->value().as_array().empty() || it->value().as_array().size() > kMaxDims) {
    v.fail("embedding", "must be an array of 1 to 4096 numbers");
    return std::nullopt;
  }
  std::vector<float> out;
  out.reserve(it->value().as_array().size());
  for (const auto& x : it->value().as_array()) {
    if (!x.is_number()) {
      v.fail("embedding", "must be an array of 1 to 4096 numbers");
      return std::nullopt;
    }
    const double d = x.to_number<double>();
    const auto f = static_cast<float>(d);
    if (!std::isfinite(d) || !std::isfinite(f)) {
      v.fail("embedding", "holds a number outside float32's range");
      return std::nullopt;
    }
    out.push_back(f);
  }
  auto check = out;
  if (!normalize(check)) {
    v.fail("embedding", "must not be all zeros");
    return std::nullopt;
  }
  return std::optional<std::vector<float>>(std::move(out));
}

// nullopt: absent or invalid; an engaged nullopt inside: an explicit null (no expiry).
std::optional<std::optional<std::string>> read_ttl(http::Validator& v, const json::object& body) {
  auto it = body.find("ttl_seconds");
  if (it == body.end()) return std::nullopt;
  if (it->value().is_null()) return std::optional<std::string>();
  auto ttl = v.optional_int("ttl_seconds", 1, kMaxTtlSeconds);
  if (!ttl) return std::nullopt;
  return std::optional<std::string>(expiry_after(*ttl));
}

Filters read_filters(http::Validator& v, const json::object& body) {
  Filters f;
  f.ns = read_namespace(v, body);
  f.tags = read_tags(v, body).value_or(std::vector<std::string>{});
  if (auto m = v.optional_object("metadata")) f.metadata = std::move(*m);
  return f;
}

}  // namespace keel::memory
