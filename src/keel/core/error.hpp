#pragma once
// One error policy: expected failures are thrown as keel::Error, which maps to an HTTP status and an
// RFC 9457 problem+json body in exactly one place (problem_json). Broken invariants assert instead.
#include <stdexcept>
#include <string>
#include <vector>

namespace keel {

struct FieldError {
  std::string field;
  std::string message;
};

class Error : public std::runtime_error {
 public:
  Error(int status, std::string title, std::string detail = {}, std::vector<FieldError> errors = {});

  int status() const { return status_; }
  const std::string& title() const { return title_; }
  const std::string& detail() const { return detail_; }
  const std::vector<FieldError>& errors() const { return errors_; }
  // Extra response headers, e.g. Allow for 405 or Retry-After for 429/503.
  std::vector<std::pair<std::string, std::string>> headers;

  static Error bad_request(std::string detail);
  static Error unauthorized(std::string detail = "missing or invalid access token");
  static Error forbidden(std::string detail = "insufficient permissions");
  static Error not_found(std::string detail = "no such resource");
  static Error conflict(std::string detail);
  static Error validation(std::vector<FieldError> errors);
  static Error unavailable(std::string detail, int retry_after_seconds = 1);

 private:
  int status_;
  std::string title_;
  std::string detail_;
  std::vector<FieldError> errors_;
};

// An exception of a lower layer that knows the answer it stands for (db::DbError: 503 when the database is
// down, 409 for a conflicting write, ...). The HTTP server answers with http_error() without knowing the
// layer; a 5xx is logged with what() as well.
class MappedError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
  virtual Error http_error() const = 0;
};

// The standard reason phrase for a status ("Not Found"), or "Error" for unknown codes.
std::string_view status_title(int status);

// RFC 9457 body: {"type","title","status","detail"[,"errors":[...]]}.
std::string problem_json(const Error& e);

}  // namespace keel
