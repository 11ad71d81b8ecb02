#pragma once
// Lifecycle hooks: a module exposes a moment of its own, and others join it there (app/wiring.cpp joins
// them, in every process, since every process writes the one database).
#include <functional>
#include <string>
#include <vector>

namespace keel::db {
class Session;
}

namespace keel::module {

struct UserCreated {
  std::string user_id;
  std::string traceparent;  // the registration's, for the events the hooks append
};

struct Hooks {
  // Auth runs these inside the transaction that creates a user (registration, `keel user create`): what a
  // module keeps for each user (billing's account) commits with the user or not at all.
  std::vector<std::function<void(db::Session&, const UserCreated&)>> user_created;

  void run_user_created(db::Session& s, const UserCreated& user) const {
    for (const auto& hook : user_created) hook(s, user);
  }
};

}  // namespace keel::module
