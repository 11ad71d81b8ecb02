#pragma once
// keel's view of an HTTP request and response, free of Beast types so module code compiles fast.
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel::http {

enum class Method { Get, Head, Post, Put, Patch, Delete, Options, Other };
std::string_view method_name(Method m);

struct TraceContext {
  std::string trace_id;   // 32 hex
  std::string parent_id;  // the caller's span, 16 hex (empty when we started the trace)
  std::string span_id;    // ours, 16 hex
  std::string flags = "01";
  std::string traceparent() const { return "00-" + trace_id + "-" + span_id + "-" + flags; }
};

class Request {
 public:
  using HeaderLookup = std::string_view (*)(const void* raw, std::string_view name);
  using HeaderList = std::vector<std::pair<std::string_view, std::string_view>>;
  using HeaderLister = HeaderList (*)(const void* raw);

  Request(const void* raw, HeaderLookup lookup, HeaderLister lister = nullptr)
      : raw_(raw), lookup_(lookup), lister_(lister) {}

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

  // A header's value, or empty when absent. Case-insensitive name.
  std::string_view header(std::string_view name) const { return lookup_(raw_, name); }
  // Every header, in order (for proxying).
  HeaderList headers() const { return lister_ ? lister_(raw_) : HeaderList{}; }
  // A path parameter by name ("{id}" in the route), percent-decoded.
  const std::string& param(std::string_view name) const;
  // A query parameter, percent-decoded; nullopt when absent.
  std::optional<std::string> query_param(std::string_view name) const;

 private:
  const void* raw_;
  HeaderLookup lookup_;
  HeaderLister lister_;
};

// Decodes %XX escapes (and '+' as a space in query strings); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  static Response json(int status, const boost::json::value& v);
  static Response json_text(int status, std::string body);
  static Response text(int status, std::string body, std::string content_type = "text/plain; charset=utf-8");
  static Response no_content();
};

}  // namespace keel::http
