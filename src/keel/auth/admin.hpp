#pragma once
// Users as an admin manages them (CONTRACT.md, "admin console"): search, one user, disable or enable, roles,
// and ending every session of a user. Each change is an event; disabling ends the user's sessions at once
// (their tokens fail within a second everywhere, their refresh tokens at once) and their logins are 403.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "keel/auth/service.hpp"
#include "keel/db/database.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/outbox.hpp"

namespace keel::auth {

class UserAdmin {
 public:
  UserAdmin(db::Database& db, const module::Outbox& outbox, module::Authenticator& verifier)
      : db_(db), outbox_(outbox), verifier_(verifier) {}
  // A page of users by id; `query`: only those whose email contains it (case-insensitive).
  boost::asio::awaitable<AuthService::Listing> list(int limit, const std::optional<std::string>& after,
                                                    const std::optional<std::string>& query);
  // The user with `disabled`; 404 when there is none.
  boost::asio::awaitable<boost::json::object> get(const std::string& id);
  // Disables or enables, and sets the roles ("user", "admin"); an admin cannot disable themselves or give
  // up their own admin role (422: the console would lock its last admin out).
  boost::asio::awaitable<boost::json::object> update(const Principal& who, const std::string& id,
                                                     std::optional<bool> disabled,
                                                     std::optional<std::vector<std::string>> roles,
                                                     const ClientInfo& client);
  // Ends every session of the user (the events name the admin `who`); 404 when there is no such user.
  boost::asio::awaitable<void> end_sessions(const Principal& who, const std::string& id,
                                            const ClientInfo& client);
  // Whether any active user has the admin role (the console's sign-in page explains how to create the first
  // one when none does). Public, so answered from memory (a yes for 10 s, a no for 1 s): a flood of asks
  // reads the table rarely.
  boost::asio::awaitable<bool> has_admin();

 private:
  // has_admin()'s last answer: when it was read (steady milliseconds) times 2, plus 1 for yes; -1: none yet.
  std::atomic<int64_t> admin_answer_{-1};
  db::Database& db_;
  const module::Outbox& outbox_;
  module::Authenticator& verifier_;
};

// The user object an admin sees: the contract's user, and whether the account is disabled.
boost::json::object admin_user_json(const db::Row& r);

}  // namespace keel::auth
