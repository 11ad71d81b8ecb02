#pragma once
// Reading JSON request bodies and checking their fields, with the contract's errors: 400 for malformed JSON
// or invalid UTF-8, 422 with errors[] naming each bad field.
#include <boost/json/value.hpp>
#include <optional>
#include <string>
#include <vector>

#include "keel/core/error.hpp"
#include "keel/http/request.hpp"

namespace keel::http {

// Parses the body as a JSON object (400 when it is not one).
boost::json::object parse_json_object(const Request& req);

// Collects field errors, then throws one 422 listing them all.
class Validator {
 public:
  explicit Validator(const boost::json::object& body) : body_(body) {}
  // A required string of `min`..`max` code points.
  std::string required_string(std::string_view field, size_t min = 1, size_t max = 65536);
  std::optional<std::string> optional_string(std::string_view field, size_t min = 0, size_t max = 65536);
  std::optional<int64_t> optional_int(std::string_view field, int64_t min, int64_t max);
  // A required integer in [min, max]; absent or null is "is required" (0 returned once failed).
  int64_t required_int(std::string_view field, int64_t min, int64_t max);
  std::optional<boost::json::object> optional_object(std::string_view field);
  void fail(std::string field, std::string message) {
    errors_.push_back({std::move(field), std::move(message)});
  }
  bool ok() const { return errors_.empty(); }
  // Throws the 422 when any field failed.
  void check() const;

 private:
  const boost::json::object& body_;
  std::vector<FieldError> errors_;
};

// True when any string or key in `v` holds a NUL character (which PostgreSQL text and jsonb refuse).
bool contains_nul(const boost::json::value& v);
// Number of Unicode code points in valid UTF-8 text.
size_t utf8_length(std::string_view s);

}  // namespace keel::http
