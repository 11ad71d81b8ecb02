#pragma once
// The transactional outbox: a module appends the event that describes a change inside the same transaction
// as the change, so no event is lost and none describes something that did not happen.
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "keel/db/database.hpp"

namespace keel::events {

struct NewEvent {
  std::string type;     // keel.auth.user.registered
  std::string source;   // /keel/auth
  std::string subject;  // the user the event concerns, or empty
  boost::json::value data = boost::json::object();
  std::string traceparent;
};

struct Appended {
  std::string id;
  int64_t seq = 0;
  std::string time;
};

// Inserts the event. On SQLite it is numbered (seq) at once; on PostgreSQL after the transaction commits,
// by the sequencer (sequencer.hpp), and `seq` is 0 here.
Appended append(db::Session& s, const NewEvent& e);

// Inserts every event, in order, as append does each; on PostgreSQL as one statement (one array per column),
// so a group of events costs the database one insert's parse, plan and executor start.
std::vector<Appended> append_all(db::Session& s, const std::vector<NewEvent>& events);

}  // namespace keel::events
