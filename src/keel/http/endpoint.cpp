// Upstream addresses (Endpoint::parse) and checked header fields, for the HTTP client.
#include <charconv>
#include <optional>
#include <string_view>

#include "keel/http/client.hpp"
#include "keel/http/request.hpp"

namespace keel::http {

std::optional<Endpoint> Endpoint::parse(std::string_view url) {
  Endpoint e;
  if (url.starts_with("https://")) {
    e.tls = true;
    e.port = 443;
    url.remove_prefix(8);
  } else if (url.starts_with("http://")) {
    url.remove_prefix(7);
  } else {
    return std::nullopt;
  }
  const size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : url.substr(slash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view port;
  if (authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    e.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port = authority.substr(close + 2);
    }
  } else {
    const size_t colon = authority.find(':');
    e.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (e.host.empty()) return std::nullopt;
  for (char c : e.host)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':'))
      return std::nullopt;
  if (!port.empty()) {
    unsigned v = 0;
    auto r = std::from_chars(port.data(), port.data() + port.size(), v);
    if (r.ec != std::errc() || r.ptr != port.data() + port.size() || v == 0 || v > 65535) return std::nullopt;
    e.port = static_cast<uint16_t>(v);
  }
  if (path.find_first_of("?# \r\n") != std::string_view::npos) return std::nullopt;
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  e.base_path = std::string(path);
  e.key = (e.tls ? "https://" : "http://") + e.host + ":" + std::to_string(e.port);
  e.host_header = e.host.find(':') != std::string::npos ? "[" + e.host + "]" : e.host;
  if (e.port != (e.tls ? 443 : 80)) e.host_header += ":" + std::to_string(e.port);
  return e;
}

void append_field(std::string& fields, std::string_view name, std::string_view value) {
  if (has_crlf(name) || name.find(':') != std::string_view::npos || has_crlf(value)) return;
  append_field_unchecked(fields, name, value);
}

}  // namespace keel::http
