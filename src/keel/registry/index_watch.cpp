#include "keel/registry/index_watch.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keel/core/log.hpp"
#include "keel/registry/repository.hpp"

namespace keel::registry {

void IndexWatch::load_sync() {
  observe(db_.read_sync([](db::Session& s) { return current_index(s); }));
}

void IndexWatch::observe(int64_t v) {
  int64_t cur = value_.load(std::memory_order_relaxed);
  while (v > cur && !value_.compare_exchange_weak(cur, v, std::memory_order_release)) {
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
                                                      std::chrono::steady_clock::time_point deadline) const {
  const auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(ex);
  while (value() <= index && std::chrono::steady_clock::now() < deadline) {
    timer.expires_after(std::min<std::chrono::steady_clock::duration>(
        std::chrono::milliseconds(25), deadline - std::chrono::steady_clock::now()));
    co_await timer.async_wait(boost::asio::use_awaitable);
  }
  co_return value();
}

}  // namespace keel::registry
