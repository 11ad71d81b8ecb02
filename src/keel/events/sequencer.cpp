#include "keel/events/sequencer.hpp"

#include <unordered_set>

#include "keel/core/log.hpp"
#include "keel/db/database.hpp"

namespace keel::events {

namespace {

// `pending` (id, n: 1, 2, ... in id order) numbered from the counter, in one statement: the counter moved
// past them, the numbers written.
std::vector<std::pair<std::string, int64_t>> number_pending(db::Session& s, const std::string& pending,
                                                            const std::vector<db::Value>& params, bool last) {
  const std::string sql =
      "WITH pending AS (" + pending +
      "), "
      "counter AS (UPDATE event_sequence SET last = last + (SELECT count(*) FROM pending), updated_at = "
      "now() WHERE id = 1 AND EXISTS (SELECT 1 FROM pending) RETURNING last - (SELECT count(*) FROM "
      "pending) AS base), "
      "numbered AS (UPDATE observability_events e SET seq = counter.base + pending.n FROM pending, counter "
      "WHERE e.id = pending.id RETURNING e.id, e.seq) "
      "SELECT id, seq FROM numbered ORDER BY seq";
  auto r = last ? s.query_last(sql, params) : s.query(sql, params);
  std::vector<std::pair<std::string, int64_t>> out;
  out.reserve(r.rows.size());
  for (const auto& row : r.rows) out.emplace_back(row.text(0), row.int64(1));
  return out;
}

// A PostgreSQL array literal of uuids (they hold no character that needs quoting).
std::string uuid_array(const std::vector<std::string>& ids, size_t from, size_t to) {
  std::string out = "{";
  for (size_t i = from; i < to; ++i) {
    if (i > from) out += ',';
    out += ids[i];
  }
  return out + "}";
}

}  // namespace

std::vector<std::pair<std::string, int64_t>> numbers_of(db::Session& s, const std::vector<std::string>& ids) {
  constexpr size_t kChunk = 4096;
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t from = 0; from < ids.size(); from += kChunk) {
    auto r = s.query(
        "SELECT e.id, e.seq FROM unnest($1::uuid[]) AS u(id) CROSS JOIN LATERAL (SELECT id, seq FROM "
        "observability_events WHERE id = u.id OFFSET 0) e WHERE e.seq IS NOT NULL",
        {uuid_array(ids, from, std::min(ids.size(), from + kChunk))});
    for (const auto& row : r.rows) out.emplace_back(row.text(0), row.int64(1));
  }
  return out;
}

// Sequencers take turns: a round waits for the one under way, then numbers what that one did not.
void lock_sequence(db::Session& s) { db::lock_for_transaction(s, db::LockKey::Sequencer); }

std::vector<std::pair<std::string, int64_t>> number_events(db::Session& s, int64_t limit, bool last) {
  return number_pending(s,
                        "SELECT id, row_number() OVER (ORDER BY id) AS n FROM observability_events "
                        "WHERE seq IS NULL ORDER BY id LIMIT $1",
                        {limit}, last);
}

std::vector<std::pair<std::string, int64_t>> number_events(db::Session& s,
                                                           const std::vector<std::string>& ids, bool last) {
  constexpr size_t kChunk = 4096;
  std::vector<std::pair<std::string, int64_t>> out;
  for (size_t from = 0; from < ids.size(); from += kChunk) {
    auto numbered = number_pending(
        s,
        // One primary-key lookup an id, whatever the planner's statistics say
        // (OFFSET 0 keeps the lookup a subquery, not a join to plan). With
        // `WHERE id = ANY($1) AND seq IS NULL` it walked every NULL entry of an
        // index, the dead ones numbered since the last vacuum included (2 ms a
        // round at 10,000 events/s); a join chose a sequential scan.
        "SELECT e.id, row_number() OVER (ORDER BY e.id) AS n FROM unnest($1::uuid[]) "
        "AS u(id) CROSS JOIN LATERAL (SELECT id, seq FROM observability_events "
        "WHERE id = u.id OFFSET 0) e WHERE e.seq IS NULL",
        {uuid_array(ids, from, std::min(ids.size(), from + kChunk))}, last && from + kChunk >= ids.size());
    out.insert(out.end(), numbered.begin(), numbered.end());
  }
  return out;
}

Sequencer::Sequencer(db::Database& db, std::chrono::milliseconds period)
    : db_(db), period_(period), pool_("keel-seq", 1, 16) {}

void Sequencer::committed(std::string id) {
  {
    std::lock_guard lk(mu_);
    // A database that numbers nothing for long (down) must not make this grow without bound: past the cap
    // the ids are dropped and the next round sweeps, which finds every unnumbered event anyway.
    constexpr size_t kMaxFresh = 100000;
    if (fresh_.size() < kMaxFresh)
      fresh_.push_back(std::move(id));
    else
      sweep_asked_.store(true, std::memory_order_release);
  }
  rounds_.wake();
}

boost::asio::awaitable<void> Sequencer::run() {
  // A sweep numbers at most this many a round, then asks for another round: the lock is held for
  // milliseconds, not for the whole backlog a dead process (or a bulk load) left, while every process's own
  // events wait for it.
  constexpr int64_t kSweep = 1000;
  auto last_sweep = std::chrono::steady_clock::now();
  for (;;) {
    co_await rounds_.sleep(period_);
    const uint64_t round = rounds_.begin();
    const auto now = std::chrono::steady_clock::now();
    const bool sweep = sweep_asked_.exchange(false, std::memory_order_acq_rel) || now - last_sweep >= period_;
    if (sweep) last_sweep = now;
    // This process's committed events, and the ids awaited since before this round: the round tells each
    // its number, whichever process gave it.
    std::vector<std::string> mine, awaited;
    {
      std::lock_guard lk(mu_);
      mine.swap(fresh_);
      for (const auto& [id, w] : wanted_)
        if (w.seq == 0) awaited.push_back(id);
    }
    if (mine.empty() && awaited.empty() && !sweep) {  // nothing to number or to tell
      rounds_.end(round);
      continue;
    }
    bool more = false;  // a full sweep: more may be waiting
    try {
      // On a thread and connection of its own: a round never queues behind the requests whose events it
      // numbers.
      const auto found = co_await offload(pool_, [&] {
        return db_.write_sync([&](db::Session& s) {
          lock_sequence(s);
          // Index lookups whatever the plan: a generic plan made while the table was small (a sequential
          // scan) went on being used as it grew. Planning every round afresh instead (force_custom_plan)
          // took 8% of the database's core at 5,000 events/s; with this the cached generic plan is right.
          s.defer("SET LOCAL enable_seqscan = off", {});
          std::vector<std::pair<std::string, int64_t>> out;
          // The round's last statement takes COMMIT with it: a round is one round trip when it only numbers
          // this process's events (as under load).
          if (!mine.empty()) out = number_events(s, mine, !sweep);
          if (sweep) {
            auto numbered = number_events(s, kSweep, true);
            if (numbered.size() == static_cast<size_t>(kSweep)) more = true;
            out.insert(out.end(), numbered.begin(), numbered.end());
          }
          return out;
        });
      });
      // Awaited events numbered before this round (by another process, or by this one before the wait).
      std::unordered_set<std::string_view> now_numbered;
      for (const auto& [id, seq] : found) now_numbered.insert(id);
      std::vector<std::string> lookup;
      for (const auto& id : awaited)
        if (!now_numbered.contains(id)) lookup.push_back(id);
      std::vector<std::pair<std::string, int64_t>> looked_up;
      if (!lookup.empty())
        looked_up = co_await offload(
            pool_, [&] { return db_.read_sync([&](db::Session& s) { return numbers_of(s, lookup); }); });
      {
        std::lock_guard lk(mu_);
        if (!wanted_.empty())
          for (const auto* list : {&found, static_cast<const decltype(looked_up)*>(&looked_up)})
            for (const auto& [id, seq] : *list)
              if (auto it = wanted_.find(id); it != wanted_.end()) it->second.seq = seq;
      }
      if (more) {
        sweep_asked_.store(true, std::memory_order_release);
        rounds_.wake();
      }
    } catch (const std::exception& e) {
      log::warn("numbering events failed", {{"error", e.what()}});
      // Whatever this round took is left to the next one's sweep.
      sweep_asked_.store(true, std::memory_order_release);
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
