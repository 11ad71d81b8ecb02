#include "keel/core/error.hpp"

#include <boost/json.hpp>

namespace keel {

Error::Error(int status, std::string title, std::string detail, std::vector<FieldError> errors)
    : std::runtime_error(detail.empty() ? title : detail),
      status_(status),
      title_(std::move(title)),
      detail_(std::move(detail)),
      errors_(std::move(errors)) {}

Error Error::bad_request(std::string detail) { return Error(400, "Bad Request", std::move(detail)); }
Error Error::unauthorized(std::string detail) {
  Error e(401, "Unauthorized", std::move(detail));
  e.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
  return e;
}
Error Error::forbidden(std::string detail) { return Error(403, "Forbidden", std::move(detail)); }
Error Error::not_found(std::string detail) { return Error(404, "Not Found", std::move(detail)); }
Error Error::conflict(std::string detail) { return Error(409, "Conflict", std::move(detail)); }
Error Error::validation(std::vector<FieldError> errors) {
  return Error(422, "Unprocessable Content", "the request body failed validation", std::move(errors));
}
Error Error::unavailable(std::string detail, int retry_after_seconds) {
  Error e(503, "Service Unavailable", std::move(detail));
  e.headers.emplace_back("Retry-After", std::to_string(retry_after_seconds));
  return e;
}

std::string_view status_title(int status) {
  switch (status) {
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Content";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Error";
  }
}

std::string problem_json(const Error& e) {
  boost::json::object o;
  o["type"] = "about:blank";
  o["title"] = e.title();
  o["status"] = e.status();
  o["detail"] = e.detail().empty() ? e.title() : e.detail();
  if (!e.errors().empty()) {
    boost::json::array arr;
    for (const auto& fe : e.errors())
      arr.push_back(boost::json::object{{"field", fe.field}, {"message", fe.message}});
    o["errors"] = std::move(arr);
  }
  return boost::json::serialize(o);
}

}  // namespace keel
