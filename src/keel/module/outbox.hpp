#pragma once
// The transactional outbox: a module appends the event that describes a change inside the same transaction
// as the change, so no event is lost and none describes something that did not happen. The events module
// reads what it appends; on PostgreSQL the process's sequencer (events/sequencer.hpp) numbers it after
// commit.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "keel/db/database.hpp"

namespace keel::module {

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

// Numbers events after they commit, where the insert does not (PostgreSQL: events/sequencer.hpp).
class Numbering {
 public:
  virtual ~Numbering() = default;
  // A transaction that appended the event `id` committed (any thread): number it soon.
  virtual void committed(std::string id) = 0;
  // Until every event committed before the call is numbered, or `deadline`: a reader then sees what was
  // written before it asked.
  virtual boost::asio::awaitable<void> catch_up(std::chrono::steady_clock::time_point deadline) = 0;
  // The number of a committed event; 0 if it has none by `deadline`.
  virtual boost::asio::awaitable<int64_t> number_of(const std::string& id,
                                                    std::chrono::steady_clock::time_point deadline) = 0;
};

class Outbox {
 public:
  // Inserts the event. On SQLite it is numbered (seq) at once; on PostgreSQL after the transaction commits,
  // by the numbering (events/sequencer.hpp), and `seq` is 0 here.
  Appended append(db::Session& s, const NewEvent& e) const;
  // Inserts every event, in order, as append does each; on PostgreSQL as one statement (one array per
  // column), so a group of events costs the database one insert's parse, plan and executor start.
  std::vector<Appended> append_all(db::Session& s, const std::vector<NewEvent>& events) const;
  // The numbering told of each commit from now on (null: none, as on SQLite). Any thread; it must outlive
  // its place here.
  void number_with(Numbering* numbering) { numbering_.store(numbering, std::memory_order_release); }
  Numbering* numbering() const { return numbering_.load(std::memory_order_acquire); }

 private:
  std::atomic<Numbering*> numbering_{nullptr};
};

}  // namespace keel::module
