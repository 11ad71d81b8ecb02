#include "keel/http/request.hpp"

#include <boost/json/serialize.hpp>
#include <boost/url/decode_view.hpp>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse_query.hpp>

#include "keel/core/error.hpp"

namespace keel::http {

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

std::optional<std::string> Request::query_param(std::string_view name) const {
  if (query.empty()) return std::nullopt;
  auto parsed = boost::urls::parse_query(query);
  if (!parsed) throw Error::bad_request("malformed query string");
  boost::urls::encoding_opts opt;
  opt.space_as_plus = true;
  for (auto p : *parsed) {
    if (p.key.decode(opt) != name) continue;
    return p.has_value ? p.value.decode(opt) : std::string();
  }
  return std::nullopt;
}

Response Response::json(int status, const boost::json::value& v) {
  return Response{status, "application/json", boost::json::serialize(v), {}};
}
Response Response::json_text(int status, std::string body) {
  return Response{status, "application/json", std::move(body), {}};
}
Response Response::text(int status, std::string body, std::string content_type) {
  return Response{status, std::move(content_type), std::move(body), {}};
}
Response Response::no_content() { return Response{204, "", "", {}}; }

}  // namespace keel::http
