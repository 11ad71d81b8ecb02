#pragma once
// The registry's monotonic index as this process knows it: polled from the database (so changes made by
// other processes arrive within ~100 ms) and advanced at once by local writes. Blocking queries and the
// gateway's route table wait on it. It is the module layer's view of the registry (module/registry_view.hpp)
// that app/ hands every module.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "keel/db/database.hpp"
#include "keel/module/registry_view.hpp"

namespace keel::registry {

class IndexWatch final : public module::RegistryView {
 public:
  explicit IndexWatch(db::Database& db) : db_(db) {}
  void load_sync();
  boost::asio::awaitable<void> run();
  int64_t index() const override { return value_.load(std::memory_order_acquire); }
  void observe(int64_t v) override;
  // Waiters sleep on a timer that observe() cancels when the index moves past theirs (on the waiter's own
  // thread).
  boost::asio::awaitable<int64_t> wait_past(int64_t index,
                                            std::chrono::steady_clock::time_point deadline) override;
  module::RegistrySnapshot snapshot(db::Session& s) const override;

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
