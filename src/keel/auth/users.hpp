#pragma once
// Auth's users as stored: the row's columns, its JSON, and the email rules (email.hpp has the key's).
#include <boost/json/object.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "keel/db/columns.hpp"
#include "keel/db/database.hpp"

namespace keel::auth {

// A user's row (db/columns.hpp), which user_json and login read, and its SELECT list.
inline constexpr db::Columns kUser{"id",         "email",      "display_name",  "roles", "metadata",
                                   "created_at", "updated_at", "password_hash", "status"};
inline const std::string kUserColumns = kUser.list();
// The source of auth's events.
inline constexpr const char* kSource = "/keel/auth";

// The contract's user object from a row of kUserColumns.
boost::json::object user_json(const db::Row& r);
// The user object's roles.
std::vector<std::string> roles_of(const boost::json::object& user);
// The key an email is stored and found by (email.hpp), or an older keel's lower-cased fallback.
std::string key_of(const std::string& email);
// The shape registration accepts: one '@', a dotted domain, no spaces or specials, within RFC 5321's sizes.
bool valid_email(const std::string& e);
// Header text kept for display: printable ASCII only (PostgreSQL refuses invalid UTF-8), at most `max` bytes.
std::string printable(std::string_view s, size_t max);

}  // namespace keel::auth
