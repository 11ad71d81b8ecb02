#include "keel/auth/users.hpp"

#include <boost/json/parse.hpp>
#include <cctype>

#include "keel/auth/email.hpp"

namespace keel::auth {

namespace json = boost::json;

namespace {
json::value parse_or(const std::string& text, json::value fallback) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? fallback : v;
}
}  // namespace

json::object user_json(const db::Row& r) {
  constexpr size_t name = kUser["display_name"];
  return json::object{{"id", r.text(kUser["id"])},
                      {"email", r.text(kUser["email"])},
                      {"display_name", r.is_null(name) ? json::value(nullptr) : json::value(r.text(name))},
                      {"roles", parse_or(r.text(kUser["roles"]), json::array{})},
                      {"metadata", parse_or(r.text(kUser["metadata"]), json::object{})},
                      {"created_at", r.time(kUser["created_at"])},
                      {"updated_at", r.time(kUser["updated_at"])}};
}

std::vector<std::string> roles_of(const json::object& user) {
  std::vector<std::string> out;
  for (const auto& r : user.at("roles").as_array())
    if (r.is_string()) out.emplace_back(r.as_string());
  return out;
}

// One that has no key (not UTF-8, a domain IDNA refuses, such as "ab--cd.example") is refused at registration
// now; an older keel stored such an email lower-cased, which the fallback still finds.
std::string key_of(const std::string& email) {
  if (auto key = email_key(email)) return *key;
  std::string lower = email;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

bool valid_email(const std::string& e) {
  if (e.size() < 3 || e.size() > 254) return false;
  const auto at = e.rfind('@');
  if (at == std::string::npos || at == 0 || at > 64 || at + 1 >= e.size()) return false;
  const std::string domain = e.substr(at + 1);
  if (domain.find('.') == std::string::npos || domain.front() == '.' || domain.back() == '.' ||
      domain.find("..") != std::string::npos)
    return false;
  for (unsigned char c : e)
    if (c <= 0x20 || c == 0x7f || c == '<' || c == '>' || c == '(' || c == ')' || c == ',' || c == ';' ||
        c == '\\' || c == '"')
      return false;
  return e.find('@') == at;
}

std::string printable(std::string_view s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    if (c >= 0x20 && c < 0x7f) out.push_back(c);
  }
  return out;
}

}  // namespace keel::auth
