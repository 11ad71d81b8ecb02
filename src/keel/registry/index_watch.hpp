#pragma once
// The registry's monotonic index as this process knows it: polled from the database (so changes made by
// other processes arrive within ~100 ms) and advanced at once by local writes. Blocking queries and the
// gateway's route table wait on it.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>

#include "keel/db/database.hpp"

namespace keel::registry {

class IndexWatch {
 public:
  explicit IndexWatch(db::Database& db) : db_(db) {}
  void load_sync();
  boost::asio::awaitable<void> run();
  int64_t value() const { return value_.load(std::memory_order_acquire); }
  void observe(int64_t v);
  // Returns once the index passes `index` or at `deadline`, whichever is first; the index then.
  boost::asio::awaitable<int64_t> wait_past(int64_t index,
                                            std::chrono::steady_clock::time_point deadline) const;

 private:
  db::Database& db_;
  std::atomic<int64_t> value_{0};
};

}  // namespace keel::registry
