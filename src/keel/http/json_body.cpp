#include "keel/http/json_body.hpp"

#include <boost/json/parse.hpp>

namespace keel::http {

boost::json::object parse_json_object(const Request& req) {
  if (req.body.empty()) throw Error::bad_request("the request body is empty; expected a JSON object");
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(req.body, ec);
  if (ec) throw Error::bad_request("the request body is not valid JSON: " + ec.message());
  if (!v.is_object()) throw Error::bad_request("the request body must be a JSON object");
  return std::move(v.as_object());
}

bool contains_nul(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::string:
      return v.get_string().find('\0') != boost::json::string::npos;
    case boost::json::kind::array:
      for (const auto& x : v.get_array())
        if (contains_nul(x)) return true;
      return false;
    case boost::json::kind::object:
      for (const auto& kv : v.get_object())
        if (kv.key().find('\0') != std::string_view::npos || contains_nul(kv.value())) return true;
      return false;
    default:
      return false;
  }
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::optional<std::string> Validator::optional_string(std::string_view field, size_t min, size_t max) {
  auto it = body_.find(field);
  if (it == body_.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_string()) {
    fail(std::string(field), "must be a string");
    return std::nullopt;
  }
  std::string s(it->value().as_string());
  if (s.find('\0') != std::string::npos) {
    fail(std::string(field), "must not contain NUL characters");
    return std::nullopt;
  }
  const size_t len = utf8_length(s);
  if (len < min || len > max) {
    fail(std::string(field),
         min == max ? "must be " + std::to_string(min) + " characters"
                    : "must be " + std::to_string(min) + " to " + std::to_string(max) + " characters");
    return std::nullopt;
  }
  return s;
}

std::string Validator::required_string(std::string_view field, size_t min, size_t max) {
  auto it = body_.find(field);
  if (it == body_.end() || it->value().is_null()) {
    fail(std::string(field), "is required");
    return {};
  }
  return optional_string(field, min, max).value_or(std::string());
}

std::optional<int64_t> Validator::optional_int(std::string_view field, int64_t min, int64_t max) {
  auto it = body_.find(field);
  if (it == body_.end() || it->value().is_null()) return std::nullopt;
  const auto& v = it->value();
  std::optional<int64_t> out;
  if (v.is_int64())
    out = v.as_int64();
  else if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX))
    out = static_cast<int64_t>(v.as_uint64());
  if (!out || *out < min || *out > max) {
    fail(std::string(field), "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return out;
}

int64_t Validator::required_int(std::string_view field, int64_t min, int64_t max) {
  auto it = body_.find(field);
  if (it == body_.end() || it->value().is_null()) {
    fail(std::string(field), "is required");
    return 0;
  }
  return optional_int(field, min, max).value_or(0);
}

std::optional<boost::json::object> Validator::optional_object(std::string_view field) {
  auto it = body_.find(field);
  if (it == body_.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_object()) {
    fail(std::string(field), "must be a JSON object");
    return std::nullopt;
  }
  if (contains_nul(it->value())) {
    fail(std::string(field), "must not contain NUL characters");
    return std::nullopt;
  }
  return it->value().as_object();
}

void Validator::check() const {
  if (!errors_.empty()) throw Error::validation(errors_);
}

}  // namespace keel::http
