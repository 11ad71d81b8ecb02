#include "keel/core/rounds.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace keel {

namespace net = boost::asio;

net::awaitable<void> Rounds::sleep(std::chrono::milliseconds period) {
  if (woken_.exchange(false, std::memory_order_acq_rel)) co_return;
  const auto timer = std::make_shared<net::steady_timer>(co_await net::this_coro::executor, period);
  {
    std::lock_guard lk(mu_);
    loop_timer_ = timer;
  }
  // A wake() between the check above and here finds the timer and cancels it.
  if (!woken_.load(std::memory_order_acquire)) co_await timer->async_wait(net::as_tuple(net::use_awaitable));
  woken_.store(false, std::memory_order_release);
}

void Rounds::wake() {
  if (woken_.exchange(true, std::memory_order_acq_rel)) return;
  std::lock_guard lk(mu_);
  if (auto timer = loop_timer_.lock()) net::post(timer->get_executor(), [timer] { timer->cancel(); });
}

uint64_t Rounds::begin() {
  std::lock_guard lk(mu_);
  return ++begun_;
}

void Rounds::end(uint64_t round) {
  std::lock_guard lk(mu_);
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->after < round) {
      if (auto timer = it->timer.lock()) net::post(timer->get_executor(), [timer] { timer->cancel(); });
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

net::awaitable<void> Rounds::next(std::chrono::steady_clock::time_point deadline) {
  const auto timer = std::make_shared<net::steady_timer>(co_await net::this_coro::executor, deadline);
  {
    std::lock_guard lk(mu_);
    waiters_.push_back({begun_, timer, timer.get()});
  }
  co_await timer->async_wait(net::as_tuple(net::use_awaitable));
  std::lock_guard lk(mu_);
  std::erase_if(waiters_, [&](const Waiter& w) { return w.id == timer.get(); });
}

}  // namespace keel
