#include "keel/memory/background.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keel/core/log.hpp"
#include "keel/core/time.hpp"

namespace keel::memory {

namespace net = boost::asio;

// Deletes expired memories in batches (reads already hide them).
net::awaitable<void> sweep(std::shared_ptr<Memories> m) {
  const auto ex = co_await net::this_coro::executor;
  net::steady_timer timer(ex);
  for (;;) {
    timer.expires_after(m->sweep_interval);
    co_await timer.async_wait(net::use_awaitable);
    try {
      int64_t total = 0;
      for (;;) {
        const std::string now = now_rfc3339();
        const int64_t n = co_await m->db->write([&](db::Session& s) { return sweep_expired(s, now, 1000); });
        total += n;
        if (n < 1000) break;
      }
      if (total > 0) log::info("expired memories deleted", {{"count", total}});
      if (m->versions_max_age_days > 0) {
        const std::string horizon = format_rfc3339(std::chrono::system_clock::now() -
                                                   std::chrono::hours(24 * m->versions_max_age_days));
        for (;;) {
          const int64_t n =
              co_await m->db->write([&](db::Session& s) { return forget_old_versions(s, horizon, 1000); });
          if (n < 1000) break;
        }
      }
    } catch (const std::exception& e) {
      log::warn("memory sweep failed", {{"error", e.what()}});
    }
  }
}

// Loads every vector space into the index at start (graphs are then built in the background).
net::awaitable<void> load_spaces(std::shared_ptr<Memories> m) {
  try {
    const auto started = std::chrono::steady_clock::now();
    auto spaces = co_await m->db->read([](db::Session& s) {
      return s.query("SELECT user_id, namespace, dims FROM memory_spaces ORDER BY user_id, namespace");
    });
    for (const auto& row : spaces.rows) {
      const std::string user_id = row.text(0), ns = row.text(1);
      const int dims = static_cast<int>(row.int64(2));
      co_await m->db->read([&](db::Session& s) { catch_up(s, m->index, user_id, ns, dims); });
    }
    const auto st = m->index.stats();
    log::info("memory vectors loaded",
              {{"spaces", static_cast<int64_t>(st.spaces)},
               {"vectors", static_cast<int64_t>(st.vectors)},
               {"ms", static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::steady_clock::now() - started)
                                               .count())}});
  } catch (const std::exception& e) {
    log::warn("loading memory vectors failed; searches load them as they go", {{"error", e.what()}});
  }
}

}  // namespace keel::memory
