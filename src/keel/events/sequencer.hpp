#pragma once
// Event numbers on PostgreSQL. Writers insert events without a number, concurrently: no lock that every
// writer of the fleet shares. After they commit, one sequencer at a time (any process's, under a lock)
// numbers committed, unnumbered events from a counter, in one statement. Readers only see numbered events,
// and each round's numbers are above every earlier round's, so a reader following `after` never misses an
// event and never sees one twice, across processes and crashes. Which events a round numbers does not
// matter for that: a process's rounds number the events its own transactions committed (told by their
// commits, found by primary key), and every `period`, or when a reader asks to catch up, a round also sweeps
// up every committed event still unnumbered (one that a process committed and then died before numbering,
// or that was inserted outside keel). Sweeping in every round cost a scan of the unnumbered-events index,
// whose dead entries grow with the write rate until vacuum: rounds slowed as the log grew.
// SQLite has one writer, which numbers events as it inserts them; no sequencer runs there.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "keel/core/rounds.hpp"
#include "keel/core/worker_pool.hpp"
#include "keel/module/outbox.hpp"

namespace keel::db {
class Database;
class Session;
}  // namespace keel::db

namespace keel::events {

// After any other sequencer's round has ended (lock_sequence, once a transaction, first): numbers the
// committed, unnumbered events (at most `limit`, in id order), or those of `ids` still unnumbered; returns
// each numbered event's (id, seq), in order. `last`: the transaction's last statement (Session::query_last).
void lock_sequence(db::Session& s);
std::vector<std::pair<std::string, int64_t>> number_events(db::Session& s, int64_t limit, bool last = false);
std::vector<std::pair<std::string, int64_t>> number_events(db::Session& s,
                                                           const std::vector<std::string>& ids,
                                                           bool last = false);
// The numbers of those of `ids` that have one.
std::vector<std::pair<std::string, int64_t>> numbers_of(db::Session& s, const std::vector<std::string>& ids);

class Sequencer : public module::Numbering {
 public:
  Sequencer(db::Database& db, std::chrono::milliseconds period);
  // A transaction that appended the event `id` committed (any thread): number it soon.
  void committed(std::string id) override;
  // Until its io_context stops.
  boost::asio::awaitable<void> run();
  // Finishes a round under way and stops its thread: call once the io_context has stopped and before it is
  // destroyed (a round finishing later would resume its coroutine on a destroyed context).
  void stop() { pool_.stop(); }
  // Until every event committed before the call is numbered (a round that begins after it has ended), or
  // `deadline`: a reader then sees what was written before it asked.
  boost::asio::awaitable<void> catch_up(std::chrono::steady_clock::time_point deadline) override {
    sweep_asked_.store(true, std::memory_order_release);
    rounds_.wake();
    return rounds_.next(deadline);
  }
  // The number of a committed event: from this process's rounds as they number it, else read (another
  // process numbered it); 0 if it has none by `deadline`.
  boost::asio::awaitable<int64_t> number_of(const std::string& id,
                                            std::chrono::steady_clock::time_point deadline) override;

 private:
  db::Database& db_;
  const std::chrono::milliseconds period_;
  Rounds rounds_;
  WorkerPool pool_;  // one thread: the rounds' own
  std::mutex mu_;
  struct Wanted {
    int64_t seq = 0;  // once numbered
    int waiters = 0;  // number_of() calls awaiting it (racing retries of one idempotent post)
  };
  std::unordered_map<std::string, Wanted> wanted_;
  std::vector<std::string> fresh_;  // committed here, not yet taken by a round
  std::atomic<bool> sweep_asked_{true};
};

}  // namespace keel::events
