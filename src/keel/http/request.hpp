#pragma once
// keel's view of an HTTP request and response, free of Beast types so module code compiles fast.
#include <boost/json/value.hpp>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace keel::http {

enum class Method { Get, Head, Post, Put, Patch, Delete, Options, Other };
std::string_view method_name(Method m);
// The method a name ("GET") stands for; Other for any name but the seven above.
Method method_of(std::string_view name);

// W3C trace context, held as our own traceparent header (built once per request): 00-trace-span-flags, with
// our span id; the caller's span id is kept apart.
struct TraceContext {
  std::string header;     // "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"
  std::string parent_id;  // the caller's span, 16 hex (empty when we started the trace)
  std::string_view traceparent() const { return header; }
  std::string_view trace_id() const { return std::string_view(header).substr(3, 32); }
  std::string_view span_id() const { return std::string_view(header).substr(36, 16); }
};

class Request {
 public:
  using HeaderLookup = std::string_view (*)(const void* raw, std::string_view name);
  using HeaderCallback = void (*)(void* ctx, std::string_view name, std::string_view value);
  using HeaderVisitor = void (*)(const void* raw, void* ctx, HeaderCallback cb);

  Request(const void* raw, HeaderLookup lookup, HeaderVisitor visitor = nullptr)
      : raw_(raw), lookup_(lookup), visitor_(visitor) {}
  // Points the request at the next message on a kept-alive connection; the strings keep their capacity.
  void rebind(const void* raw) { raw_ = raw; }

  Method method = Method::Other;
  std::string_view method_str;
  std::string_view target;  // path and query as received
  std::string_view path;    // before '?'
  std::string_view query;   // after '?', undecoded
  std::string body;
  std::string request_id;
  TraceContext trace;
  std::string remote_ip;
  std::vector<std::pair<std::string_view, std::string>> path_params;
  // Room for a handler to build what it sends on (the gateway's upstream header fields): it keeps its
  // capacity from one request to the next on a connection, so building costs no allocation.
  std::string scratch;
  // The verified caller of a route that is not public, set by the router's guard before the handler runs
  // (Router::set_guard; module/caller.hpp gives it its type). Empty on public routes.
  std::shared_ptr<const void> caller;
  // The module the gateway routed this request to (empty elsewhere): the server counts its answer in that
  // module's recent traffic (metrics.hpp). A module name fits the string's own buffer: no allocation.
  std::string upstream;

  // A header's value, or empty when absent. Case-insensitive name.
  std::string_view header(std::string_view name) const { return lookup_(raw_, name); }
  // Calls f(name, value) for every header, in order (for proxying), without copying them.
  template <class F>
  void for_each_header(F&& f) const {
    if (!visitor_) return;
    visitor_(raw_, &f, [](void* ctx, std::string_view name, std::string_view value) {
      (*static_cast<std::remove_reference_t<F>*>(ctx))(name, value);
    });
  }
  // A path parameter by name ("{id}" in the route), percent-decoded.
  const std::string& param(std::string_view name) const;
  // A query parameter, percent-decoded; nullopt when absent.
  std::optional<std::string> query_param(std::string_view name) const;
  // An integer query parameter in [lo, hi]; nullopt when absent, a 422 naming it when malformed.
  std::optional<int64_t> query_int(std::string_view name, int64_t lo, int64_t hi) const;
  // An RFC 3339 time query parameter, normalized to our UTC form; a 422 naming it when malformed.
  std::optional<std::string> query_time(std::string_view name) const;

 private:
  const void* raw_;
  HeaderLookup lookup_;
  HeaderVisitor visitor_;
};

// True when `s` holds CR or LF, which would split a header (two vectorized scans, not a byte-by-byte set).
inline bool has_crlf(std::string_view s) {
  return std::memchr(s.data(), '\r', s.size()) != nullptr || std::memchr(s.data(), '\n', s.size()) != nullptr;
}

// Appends the decimal digits of n (response heads: status, Content-Length).
inline void append_number(std::string& out, uint64_t n) {
  char buf[20];
  const auto r = std::to_chars(buf, buf + sizeof buf, n);
  out.append(buf, static_cast<size_t>(r.ptr - buf));
}

// ASCII lower case, without the locale-aware std::tolower call (header names are ASCII).
inline char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + ('a' - 'A')) : c; }

// ASCII case-insensitive equality (header names).
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

// Decodes %XX escapes (and '+' as a space in query strings); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

class BodyStream;  // http/body_stream.hpp

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string raw_headers;  // pre-formatted, checked "Name: value\r\n" lines (a proxied response's fields)
  // For an answer to HEAD whose body is not the one a GET would have (a proxied HEAD: its upstream sent no
  // body): the Content-Length to announce, if the upstream gave one, and `proxied_head` set either way.
  std::optional<uint64_t> head_length;
  bool proxied_head = false;
  // A body sent as it is produced (a proxied upstream's large or open-ended one), after `body`: the server
  // frames it with the stream's length when known, else chunked (close-delimited for HTTP/1.0 clients).
  std::shared_ptr<BodyStream> stream;

  static Response json(int status, const boost::json::value& v);
  static Response json_text(int status, std::string body);
  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  static Response no_content();
};

}  // namespace keel::http
