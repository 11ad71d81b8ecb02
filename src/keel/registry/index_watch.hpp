#pragma once
// The registry's monotonic index as this process knows it: polled from the database (so changes made by
// other processes arrive within ~100 ms) and advanced at once by local writes. Blocking queries and the
// gateway's route table wait on it.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "keel/db/database.hpp"

namespace keel::registry {

class IndexWatch {
 public:
  explicit IndexWatch(db::Database& db) : db_(db) {}
  void load_sync();
  boost::asio::awaitable<void> run();
  int64_t value() const { return value_.load(std::memory_order_acquire); }
  void observe(int64_t v);
  // Returns once the index passes `index` or at `deadline`, whichever is first; the index then. Waiters
  // sleep on a timer that observe() cancels when the index moves past theirs (on the waiter's own thread).
  boost::asio::awaitable<int64_t> wait_past(int64_t index, std::chrono::steady_clock::time_point deadline);

 private:
  struct Waiter {
    int64_t index;
    std::shared_ptr<boost::asio::steady_timer> timer;  // shared with the wake-up posted to its thread
  };
  db::Database& db_;
  std::atomic<int64_t> value_{0};
  std::mutex mu_;
  std::vector<Waiter> waiters_;
};

}  // namespace keel::registry
