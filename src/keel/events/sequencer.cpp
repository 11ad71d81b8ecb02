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

Sequencer::Sequencer(db::Database& db, std::chrono::milliseconds period)
    : db_(db), period_(period), pool_("keel-seq", 1, 16) {}

boost::asio::awaitable<void> Sequencer::run() {
  constexpr int64_t kBatch = 10000;
  constexpr size_t kLookup = 100;  // ids a lookup statement
  for (;;) {
    co_await rounds_.sleep(period_);
    const uint64_t round = rounds_.begin();
    // Ids awaited since before this round: the round tells each its number, whichever process gave it.
    std::vector<std::string> awaited;
    {
      std::lock_guard lk(mu_);
      for (const auto& [id, w] : wanted_)
        if (w.seq == 0) awaited.push_back(id);
    }
    try {
      // On a thread and connection of its own: a round never queues behind the requests whose events it
      // numbers.
      const auto found = co_await offload(pool_, [&] {
        return db_.write_sync([&](db::Session& s) {
          std::vector<std::pair<std::string, int64_t>> out;
          for (;;) {  // a full batch means more may be waiting
            auto numbered = number_events(s, kBatch);
            const bool full = numbered.size() == static_cast<size_t>(kBatch);
            out.insert(out.end(), numbered.begin(), numbered.end());
            if (!full) break;
          }
          // Awaited events another process numbered.
          for (size_t from = 0; from < awaited.size(); from += kLookup) {
            std::string sql = "SELECT id, seq FROM observability_events WHERE seq IS NOT NULL AND id IN (";
            std::vector<db::Value> params;
            for (size_t i = from; i < std::min(awaited.size(), from + kLookup); ++i) {
              params.emplace_back(awaited[i]);
              sql += (i == from ? "$" : ", $") + std::to_string(params.size());
            }
            for (const auto& row : s.query(sql + ")", params).rows)
              out.emplace_back(row.text(0), row.int64(1));
          }
          return out;
        });
      });
      std::lock_guard lk(mu_);
      if (!wanted_.empty())
        for (const auto& [id, seq] : found)
          if (auto it = wanted_.find(id); it != wanted_.end()) it->second.seq = seq;
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
    ++wanted_[id].waiters;
  }
  struct Forget {
    Sequencer* self;
    const std::string& id;
    ~Forget() {
      std::lock_guard lk(self->mu_);
      if (auto it = self->wanted_.find(id); it != self->wanted_.end() && --it->second.waiters == 0)
        self->wanted_.erase(it);
    }
  } forget{this, id};
  rounds_.wake();
  int64_t seq = 0;
  while (seq == 0 && std::chrono::steady_clock::now() < deadline) {
    co_await rounds_.next(deadline);
    std::lock_guard lk(mu_);
    seq = wanted_[id].seq;
  }
  co_return seq;
}

}  // namespace keel::events
