#include "keel/events/sequencer.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keel/core/log.hpp"
#include "keel/db/database.hpp"

namespace keel::events {

namespace {
std::atomic<Sequencer*> g_sequencer{nullptr};
}  // namespace

void set_sequencer(Sequencer* s) { g_sequencer.store(s, std::memory_order_release); }
Sequencer* sequencer() { return g_sequencer.load(std::memory_order_acquire); }

Numbered number_events(db::Session& s, int64_t limit) {
  if (!s.query("SELECT pg_try_advisory_xact_lock($1)", {static_cast<int64_t>(db::LockKey::Sequencer)})
           .rows.at(0)
           .boolean(0))
    return {true, 0, 0};
  // One statement: the pending events in id order, the counter moved past them, the numbers written.
  auto r = s.query(
      "WITH pending AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM observability_events "
      "WHERE seq IS NULL ORDER BY id LIMIT $1), "
      "counter AS (UPDATE event_sequence SET last = last + (SELECT count(*) FROM pending), updated_at = "
      "now() "
      "WHERE id = 1 AND EXISTS (SELECT 1 FROM pending) RETURNING last - (SELECT count(*) FROM pending) AS "
      "base), "
      "numbered AS (UPDATE observability_events e SET seq = counter.base + pending.n FROM pending, counter "
      "WHERE e.id = pending.id RETURNING e.seq) "
      "SELECT count(*), COALESCE(MAX(seq), 0) FROM numbered",
      {limit});
  return {false, r.rows.at(0).int64(0), r.rows.at(0).int64(1)};
}

Sequencer::Sequencer(db::Database& db, std::chrono::milliseconds period) : db_(db), period_(period) {}

boost::asio::awaitable<void> Sequencer::run() {
  constexpr int64_t kBatch = 10000;
  const auto ex = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer pause(ex);
  for (;;) {
    co_await rounds_.sleep(period_);
    const uint64_t round = rounds_.begin();
    try {
      // Until nothing is left: a full batch means more may be waiting, and while another process numbers,
      // events this one committed after that round's snapshot may be left for this one.
      for (int i = 0; i < 1000; ++i) {
        const Numbered n = co_await db_.write([&](db::Session& s) { return number_events(s, kBatch); });
        if (!n.busy && n.count < kBatch) break;
        if (n.busy) {
          pause.expires_after(std::chrono::milliseconds(1));
          co_await pause.async_wait(boost::asio::use_awaitable);
        }
      }
    } catch (const std::exception& e) {
      log::warn("numbering events failed", {{"error", e.what()}});
    }
    rounds_.end(round);
  }
}

}  // namespace keel::events
