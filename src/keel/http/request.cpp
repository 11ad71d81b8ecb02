#include "keel/http/request.hpp"

#include <boost/json/serialize.hpp>
#include <charconv>

#include "keel/core/error.hpp"
#include "keel/core/time.hpp"

namespace keel::http {

Method method_of(std::string_view name) {
  for (Method m :
       {Method::Get, Method::Head, Method::Post, Method::Put, Method::Patch, Method::Delete, Method::Options})
    if (method_name(m) == name) return m;
  return Method::Other;
}

std::string_view method_name(Method m) {
  switch (m) {
    case Method::Get:
      return "GET";
    case Method::Head:
      return "HEAD";
    case Method::Post:
      return "POST";
    case Method::Put:
      return "PUT";
    case Method::Patch:
      return "PATCH";
    case Method::Delete:
      return "DELETE";
    case Method::Options:
      return "OPTIONS";
    default:
      return "OTHER";
  }
}

const std::string& Request::param(std::string_view name) const {
  for (const auto& [k, v] : path_params)
    if (k == name) return v;
  static const std::string empty;
  return empty;
}

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '%') {
      const int hi = i + 1 < s.size() ? hex(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  // Boost.URL 1.81's decoding of query values sized its output wrongly here (trailing garbage), so the
  // query string is split and decoded by hand.
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    const std::string_view pair = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    if (!key) throw Error::bad_request("malformed query string");
    if (*key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    auto value = percent_decode(pair.substr(eq + 1), true);
    if (!value) throw Error::bad_request("malformed query string");
    return value;
  }
  return std::nullopt;
}

std::optional<int64_t> Request::query_int(std::string_view name, int64_t lo, int64_t hi) const {
  auto v = query_param(name);
  if (!v) return std::nullopt;
  int64_t n = 0;
  auto r = std::from_chars(v->data(), v->data() + v->size(), n);
  if (r.ec != std::errc() || r.ptr != v->data() + v->size() || n < lo || n > hi)
    throw Error::validation(
        {{std::string(name), "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi)}});
  return n;
}

std::optional<std::string> Request::query_time(std::string_view name) const {
  auto v = query_param(name);
  if (!v) return std::nullopt;
  auto t = parse_rfc3339(*v);
  if (!t) throw Error::validation({{std::string(name), "must be an RFC 3339 time"}});
  return format_rfc3339(*t);
}

Response Response::json(int status, const boost::json::value& v) {
  return Response{status, "application/json", boost::json::serialize(v), {}, {}, {}, false, nullptr};
}
Response Response::json_text(int status, std::string body) {
  return Response{status, "application/json", std::move(body), {}, {}, {}, false, nullptr};
}
Response Response::text(int status, std::string body, std::string content_type) {
  return Response{status, std::move(content_type), std::move(body), {}, {}, {}, false, nullptr};
}
Response Response::no_content() { return Response{204, "", "", {}, {}, {}, false, nullptr}; }

}  // namespace keel::http
