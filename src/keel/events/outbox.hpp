#pragma once
// The transactional outbox: a module appends the event that describes a change inside the same transaction
// as the change, so no event is lost and none describes something that did not happen.
#include <boost/json/object.hpp>
#include <string>

#include "keel/db/database.hpp"

namespace keel::events {

struct NewEvent {
  std::string type;     // keel.auth.user.registered
  std::string source;   // /keel/auth
  std::string subject;  // the user the event concerns, or empty
  boost::json::object data;
  std::string traceparent;
};

// Inserts the event; returns its id.
std::string append(db::Session& s, const NewEvent& e);

}  // namespace keel::events
