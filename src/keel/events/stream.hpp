#pragma once
// Realtime: GET /v1/stream (CONTRACT.md, "realtime") as Server-Sent Events. The event log is the truth: every
// message is an event with its gap-free seq as the SSE id, so a stream delivers each matching change in
// order, none twice, and a client that reconnects with Last-Event-ID gets exactly what it missed. One hub per
// process follows the log (one query a round, whatever the number of subscribers; on PostgreSQL it sees
// every process's commits, numbered by their sequencers) and hands each new event to the subscribers whose
// topics match; each subscriber's queue is bounded (past kMaxBehind it gets `resync` and is closed), so a
// slow reader never grows the process.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "keel/db/database.hpp"
#include "keel/http/body_stream.hpp"
#include "keel/http/long_polls.hpp"
#include "keel/module/caller.hpp"

namespace keel::events {

// Messages a subscriber may fall behind by before it gets `resync` and is closed; and the bytes (events
// carry up to 64 KiB of data: a thousand of them would be 64 MiB held for one slow client).
constexpr size_t kMaxBehind = 1000;
constexpr size_t kMaxBehindBytes = 4 << 20;

// What a stream carries (?topics=), and for whom.
struct Topics {
  bool memories = false;              // the caller's own memory changes
  bool billing = false;               // the caller's own ledger postings
  bool registry = false;              // instance changes
  bool all = false;                   // the whole log (admin or service)
  std::vector<std::string> prefixes;  // events:<type prefix> (admin or service)
  std::string user_id;                // whose memories and billing
  bool admin = false;                 // login failures unredacted, as GET /v1/events shows them to admins

  // A comma list of topics; 422 for none or an unknown one, 403 for the event log without the admin role
  // or a service token.
  // With `who` null, only the list's syntax is checked (422), before a stream ticket is spent on it.
  static Topics parse(std::string_view list, const module::Principal* who);
  bool wants(std::string_view type, std::string_view subject) const;
  // The same as SQL over observability_events, for reading what a client missed; appends its parameters.
  std::string condition(std::vector<db::Value>& params) const;
};

// One SSE message: "id: <seq>\nevent: <type>\ndata: <CloudEvent>\n\n".
std::string sse_message(int64_t seq, std::string_view type, std::string_view cloud_event);

class Hub;

// A stream's place in the hub: what the hub has handed it and not yet sent. Touched by the hub's thread
// (push) and the connection's (take), under `mu`.
class Subscriber {
 public:
  Subscriber(Topics topics, std::shared_ptr<const module::Principal> who, boost::asio::any_io_executor ex,
             int64_t after)
      : topics_(std::move(topics)), who_(std::move(who)), ex_(std::move(ex)), timer_(ex_), after_(after) {}
  const Topics& topics() const { return topics_; }
  int64_t after() const { return after_; }

 private:
  friend class Hub;
  friend class StreamBody;
  Topics topics_;
  std::shared_ptr<const module::Principal> who_;
  boost::asio::any_io_executor ex_;
  boost::asio::steady_timer timer_;  // the connection's wait, cut short by a push (on ex_)
  const int64_t after_;              // only events past it (where the client's backlog ends)
  std::mutex mu_;
  std::string pending_;  // formatted messages, in seq order
  size_t pending_count_ = 0;
  bool overflowed_ = false;  // fell more than kMaxBehind behind: gets resync, then ends
  bool closed_ = false;      // the process is stopping, or the caller's access ended
  bool wake_posted_ = false;
};

class Hub {
 public:
  Hub(db::Database& db, const module::Authenticator& authenticator)
      : db_(db), authenticator_(authenticator) {}
  // Starts at the log's end; then follows it every `period` until stop(), and four times a second checks
  // every subscriber's access (a revoked session or an expired token ends its stream): one pass here rather
  // than a timer per stream, so idle streams cost no CPU.
  void load_sync();
  boost::asio::awaitable<void> run(std::chrono::milliseconds period);
  // A new subscriber, handed every matching event past max(position(), after); `ex` is its connection's.
  std::shared_ptr<Subscriber> join(Topics topics, std::shared_ptr<const module::Principal> who,
                                   const boost::asio::any_io_executor& ex, int64_t after);
  void leave(const std::shared_ptr<Subscriber>& s);
  // The last seq handed out: a subscriber joining now reads what precedes it from the database.
  int64_t position() const { return position_.load(std::memory_order_acquire); }
  // At SIGTERM: every stream ends (its client reconnects elsewhere and resumes).
  void stop();
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }
  size_t subscribers() const;

 private:
  void fan_out(const db::Result& rows);
  void check_access();
  static void push(const std::shared_ptr<Subscriber>& s, int64_t seq, const std::string& message);
  static void wake(const std::shared_ptr<Subscriber>& s);
  static void close(const std::shared_ptr<Subscriber>& s);
  db::Database& db_;
  const module::Authenticator& authenticator_;
  std::atomic<int64_t> position_{0};
  std::atomic<bool> stopped_{false};
  std::chrono::steady_clock::time_point warned_{};  // the last "reading the log failed" (one every 5 s)
  mutable std::mutex mu_;
  // The caller's own topics by user; the log's topics (registry, events) for anyone.
  std::unordered_multimap<std::string, std::shared_ptr<Subscriber>> by_user_;
  std::vector<std::shared_ptr<Subscriber>> shared_;
};

// The response body of one stream: first what the client missed (read from the log in pages), then what the
// hub hands it; a keep-alive comment when nothing was sent for 15 s. It ends when the hub closes it.
class StreamBody final : public http::BodyStream {
 public:
  // `slot`: the caller's place among its open streams, held while the stream is.
  StreamBody(Hub& hub, db::Database& db, std::shared_ptr<Subscriber> sub, int64_t from, bool resync_first,
             std::unique_ptr<http::KeyedSlots::Slot> slot);
  ~StreamBody() override;
  boost::asio::awaitable<bool> next(std::string& piece) override;

 private:
  Hub& hub_;
  db::Database& db_;
  std::shared_ptr<Subscriber> sub_;
  int64_t backlog_from_;  // the backlog still to read: (backlog_from_, sub_->after()]
  bool resync_first_;
  bool started_ = false, ending_ = false;
  std::chrono::steady_clock::time_point last_sent_;
  std::unique_ptr<http::KeyedSlots::Slot> slot_;
};

}  // namespace keel::events
