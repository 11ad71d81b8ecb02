#include "keel/events/sequencer.hpp"

#include "keel/core/log.hpp"
#include "keel/db/database.hpp"

namespace keel::events {

namespace {
std::atomic<Sequencer*> g_sequencer{nullptr};
}  // namespace

void set_sequencer(Sequencer* s) { g_sequencer.store(s, std::memory_order_release); }
Sequencer* sequencer() { return g_sequencer.load(std::memory_order_acquire); }

std::vector<std::pair<std::string, int64_t>> number_events(db::Session& s, int64_t limit) {
  // Sequencers take turns: a round waits for the one under way, then numbers what that one did not see.
  db::lock_for_transaction(s, db::LockKey::Sequencer);
  // One statement: the pending events in id order, the counter moved past them, the numbers written.
  auto r = s.query(
      "WITH pending AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM observability_events "
      "WHERE seq IS NULL ORDER BY id LIMIT $1), "
      "counter AS (UPDATE event_sequence SET last = last + (SELECT count(*) FROM pending), updated_at = "
      "now() "
      "WHERE id = 1 AND EXISTS (SELECT 1 FROM pending) RETURNING last - (SELECT count(*) FROM pending) AS "
      "base), "
      "numbered AS (UPDATE observability_events e SET seq = counter.base + pending.n FROM pending, counter "
      "WHERE e.id = pending.id RETURNING e.id, e.seq) "
      "SELECT id, seq FROM numbered ORDER BY seq",
      {limit});
  std::vector<std::pair<std::string, int64_t>> out;
  out.reserve(r.rows.size());
  for (const auto& row : r.rows) out.emplace_back(row.text(0), row.int64(1));
  return out;
}

Sequencer::Sequencer(db::Database& db, std::chrono::milliseconds period) : db_(db), period_(period) {}

boost::asio::awaitable<void> Sequencer::run() {
  constexpr int64_t kBatch = 10000;
  for (;;) {
    co_await rounds_.sleep(period_);
    const uint64_t round = rounds_.begin();
    try {
      for (;;) {  // a full batch means more may be waiting
        const auto numbered = co_await db_.write([&](db::Session& s) { return number_events(s, kBatch); });
        {
          std::lock_guard lk(mu_);
          if (!wanted_.empty())
            for (const auto& [id, seq] : numbered)
              if (auto it = wanted_.find(id); it != wanted_.end()) it->second = seq;
        }
        if (numbered.size() < static_cast<size_t>(kBatch)) break;
      }
    } catch (const std::exception& e) {
      log::warn("numbering events failed", {{"error", e.what()}});
    }
    rounds_.end(round);
  }
}

boost::asio::awaitable<int64_t> Sequencer::number_of(const std::string& id,
                                                     std::chrono::steady_clock::time_point deadline) {
  {
    std::lock_guard lk(mu_);
    wanted_.emplace(id, 0);
  }
  struct Forget {
    Sequencer* self;
    const std::string& id;
    ~Forget() {
      std::lock_guard lk(self->mu_);
      self->wanted_.erase(id);
    }
  } forget{this, id};
  rounds_.wake();
  int64_t seq = 0;
  while (seq == 0 && std::chrono::steady_clock::now() < deadline) {
    co_await rounds_.next(deadline);
    {
      std::lock_guard lk(mu_);
      seq = wanted_.at(id);
    }
    if (seq != 0) break;
    // Not numbered here: another process's round may have numbered it.
    seq = co_await db_.read([&](db::Session& s) {
      auto r = s.query("SELECT seq FROM observability_events WHERE id = $1", {id});
      return r.empty() || r.rows[0].is_null(0) ? int64_t{0} : r.rows[0].int64(0);
    });
  }
  co_return seq;
}

}  // namespace keel::events
