#pragma once
// Group commit for independent writes of one kind (events posted with no Idempotency-Key): writes that
// arrive while a transaction is on its way are queued, and the next transaction carries all of them in one
// round trip and one commit (one WAL flush on PostgreSQL). Each writer is answered once its own write has
// committed, so an acknowledged write is as durable as on its own; what changes is the database's cost per
// write: a commit, a flush and a wake-up of the server shared by every write of the group.
//
// A group that fails for the database's sake (unreachable, busy, out of room) fails each of its writes with
// that error; one that fails for any other reason is retried one write at a time, so one write the database
// refuses does not fail the others.
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "keel/db/database.hpp"

namespace keel::db {

template <class Item, class Out>
class GroupWrite : public std::enable_shared_from_this<GroupWrite<Item, Out>> {
 public:
  // Writes the group's items in the session's transaction and returns each item's result, in order.
  using Fn = std::function<std::vector<Out>(Session&, const std::vector<Item>&)>;

  // Held by a shared_ptr: a group under way keeps it alive. At most `max_group` items a transaction; at most
  // `max_in_flight` transactions at once (more groups in flight make smaller groups; the database merges
  // their flushes anyway); at most `max_queued` waiting (past it a write is refused with 503 instead of
  // queueing behind a stuck database).
  GroupWrite(Database& db, Fn fn, size_t max_group = 256, size_t max_in_flight = 2, size_t max_queued = 8192)
      : db_(db),
        fn_(std::move(fn)),
        max_group_(max_group),
        max_in_flight_(max_in_flight),
        max_queued_(max_queued) {}
  GroupWrite(const GroupWrite&) = delete;
  GroupWrite& operator=(const GroupWrite&) = delete;

  // Until the item's transaction has committed: its result, or the error that failed it.
  // Named arguments only (GCC 12 and temporaries in co_await: README, "Developing").
  boost::asio::awaitable<Out> write(Item item) {
    auto ex = co_await boost::asio::this_coro::executor;
    auto initiate = [this, ex](auto handler, Item it) {
      using Handler = decltype(handler);
      struct State {
        Handler handler;
        decltype(boost::asio::make_work_guard(ex)) work;
      };
      auto state = std::make_shared<State>(State{std::move(handler), boost::asio::make_work_guard(ex)});
      // `ep` is moved, never copied, on the writing thread: the last reference to the exception is let go on
      // the I/O thread, after the coroutine has read it (libstdc++'s reference count is invisible to TSan).
      Waiter w{std::move(it), [ex, state](std::exception_ptr ep, Out v) {
                 boost::asio::post(ex, [state, ep = std::move(ep), v = std::move(v)]() mutable {
                   state->handler(std::move(ep), std::move(v));
                   state->work.reset();
                 });
               }};
      enqueue(std::move(w));
    };
    co_return co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                   void(std::exception_ptr, Out)>(
        initiate, boost::asio::use_awaitable, std::move(item));
  }

 private:
  struct Waiter {
    Item item;
    std::function<void(std::exception_ptr, Out)> done;
  };

  void enqueue(Waiter w) {
    bool start = false;
    {
      std::lock_guard lk(mu_);
      if (queue_.size() >= max_queued_) {
        w.done(std::make_exception_ptr(Error::unavailable("server busy, try again", 1)), Out{});
        return;
      }
      queue_.push_back(std::move(w));
      if (in_flight_ < max_in_flight_) {
        ++in_flight_;
        start = true;
      }
    }
    if (start && !db_.pool().try_post_fn([self = this->shared_from_this()] { self->drain(); })) {
      // The pool is full or stopping: the last flusher out fails what it leaves behind.
      std::deque<Waiter> left;
      {
        std::lock_guard lk(mu_);
        if (--in_flight_ == 0) left.swap(queue_);
      }
      for (auto& l : left)
        l.done(std::make_exception_ptr(Error::unavailable("server busy, try again", 1)), Out{});
    }
  }

  // On a database worker: groups until the queue is empty.
  void drain() {
    for (;;) {
      std::vector<Waiter> group;
      {
        std::lock_guard lk(mu_);
        if (queue_.empty()) {
          --in_flight_;
          return;
        }
        const size_t n = std::min(queue_.size(), max_group_);
        group.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      run(group);
    }
  }

  void run(std::vector<Waiter>& group) {
    std::vector<Item> items;
    items.reserve(group.size());
    for (auto& w : group) items.push_back(std::move(w.item));
    try {
      std::vector<Out> outs = db_.write_sync([&](Session& s) { return fn_(s, items); });
      for (size_t i = 0; i < group.size(); ++i) group[i].done(nullptr, std::move(outs.at(i)));
      return;
    } catch (const DbError& e) {
      // Each writer gets a copy of its own (copy_of): one exception object shared by coroutines on another
      // thread would be destroyed by whichever thread lets go of it last.
      const bool the_database = e.kind() == DbError::Kind::Unavailable || e.kind() == DbError::Kind::Busy;
      if (the_database || group.size() == 1) {
        for (auto& w : group) w.done(copy_of(std::current_exception()), Out{});
        return;
      }
    } catch (const std::exception&) {
      if (group.size() == 1) {
        group[0].done(copy_of(std::current_exception()), Out{});
        return;
      }
    }
    // One at a time: the item the database refused fails alone.
    for (size_t i = 0; i < group.size(); ++i) {
      std::vector<Waiter> one;
      one.push_back(Waiter{std::move(items[i]), std::move(group[i].done)});
      run(one);
    }
  }

  Database& db_;
  Fn fn_;
  const size_t max_group_, max_in_flight_, max_queued_;
  std::mutex mu_;
  std::deque<Waiter> queue_;
  size_t in_flight_ = 0;
};

}  // namespace keel::db
