#pragma once
// The rounds of a background loop (leasing budgets, numbering events) and those who wait for them. The loop
// sleeps until its period passes or anyone, on any thread, calls wake(); it brackets each round with
// begin()/end(); a waiter's next() returns once a round that began after the call has ended (or at its
// deadline). Timers live in the frames of the loop and of the waiters, so none outlives its io_context.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace keel {

class Rounds {
 public:
  // The loop: until `period` has passed or wake() was called since the last sleep.
  boost::asio::awaitable<void> sleep(std::chrono::milliseconds period);
  void wake();
  uint64_t begin();
  void end(uint64_t round);
  // Anyone: until a round that begins after this call has ended, or `deadline`.
  boost::asio::awaitable<void> next(std::chrono::steady_clock::time_point deadline);

 private:
  struct Waiter {
    uint64_t after;  // rounds begun when it started waiting
    std::weak_ptr<boost::asio::steady_timer> timer;
    const void* id;
  };
  std::mutex mu_;
  std::vector<Waiter> waiters_;
  uint64_t begun_ = 0;
  std::atomic<bool> woken_{false};
  std::weak_ptr<boost::asio::steady_timer> loop_timer_;
};

}  // namespace keel
