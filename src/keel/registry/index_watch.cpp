#include "keel/registry/index_watch.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/registry/repository.hpp"

namespace keel::registry {

void IndexWatch::load_sync() {
  observe(db_.read_sync([](db::Session& s) { return current_index(s); }));
}

void IndexWatch::observe(int64_t v) {
  int64_t cur = value_.load(std::memory_order_relaxed);
  while (v > cur && !value_.compare_exchange_weak(cur, v, std::memory_order_release)) {
  }
  if (v <= cur) return;
  std::lock_guard lk(mu_);
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->index < v) {
      boost::asio::post(it->timer->get_executor(), [timer = it->timer] { timer->cancel(); });
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
}

boost::asio::awaitable<void> IndexWatch::run() {
  const auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(ex);
  for (;;) {
    timer.expires_after(std::chrono::milliseconds(100));
    co_await timer.async_wait(boost::asio::use_awaitable);
    try {
      const int64_t v = co_await db_.read([](db::Session& s) { return current_index(s); });
      observe(v);
    } catch (const std::exception& e) {
      log::warn("registry index poll failed", {{"error", e.what()}});
    }
  }
}

boost::asio::awaitable<int64_t> IndexWatch::wait_past(int64_t index,
                                                      std::chrono::steady_clock::time_point deadline) {
  const auto ex = co_await boost::asio::this_coro::executor;
  auto timer = std::make_shared<boost::asio::steady_timer>(ex, deadline);
  {
    std::lock_guard lk(mu_);
    // Checked and registered under the lock observe() wakes waiters under: an advance is either seen here or
    // finds this waiter and cancels its timer.
    if (value_.load(std::memory_order_acquire) > index) co_return value_.load(std::memory_order_acquire);
    waiters_.push_back({index, timer});
  }
  co_await timer->async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  {
    std::lock_guard lk(mu_);
    std::erase_if(waiters_, [&](const Waiter& w) { return w.timer == timer; });
  }
  co_return value_.load(std::memory_order_acquire);
}

module::RegistrySnapshot IndexWatch::snapshot(db::Session& s) const {
  module::RegistrySnapshot out;
  out.owners = route_owners(s);
  const std::string now = now_rfc3339();
  for (auto& i : list_instances(s, std::nullopt))
    if (i.status == "passing" && i.expires_at > now)
      out.live.push_back(
          {std::move(i.module), std::move(i.url), std::move(i.health_path), std::move(i.public_routes)});
  out.index = current_index(s);
  return out;
}

}  // namespace keel::registry
