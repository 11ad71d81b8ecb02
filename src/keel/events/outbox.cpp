#include "keel/events/outbox.hpp"

#include <boost/json/serialize.hpp>

#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"
#include "keel/events/sequencer.hpp"

namespace keel::events {

Appended append(db::Session& s, const NewEvent& e) {
  Appended out{uuid_v7(), 0, now_rfc3339()};
  const std::vector<db::Value> values{out.id,
                                      e.type,
                                      e.source,
                                      e.subject.empty() ? db::Value(nullptr) : db::Value(e.subject),
                                      out.time,
                                      boost::json::serialize(e.data),
                                      e.traceparent.empty() ? db::Value(nullptr) : db::Value(e.traceparent)};
  constexpr const char* kInsert =
      "INSERT INTO observability_events (id, type, source, subject, time, data, traceparent, created_at, "
      "updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $5, $5)";
  if (s.dialect() == db::Dialect::Sqlite) {  // one writer: numbered as inserted
    out.seq = s.query(std::string(kInsert) + " RETURNING seq", values).rows.at(0).int64(0);
    return out;
  }
  // Numbered after commit by the sequencer (sequencer.hpp), which the commit wakes.
  s.query(kInsert, values);
  s.after_commit([] {
    if (Sequencer* q = sequencer()) q->wake();
  });
  return out;
}

boost::asio::awaitable<int64_t> number_of(db::Database& db, const std::string& id,
                                          std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    const int64_t seq = co_await db.read([&](db::Session& s) {
      auto r = s.query("SELECT seq FROM observability_events WHERE id = $1", {id});
      return r.empty() || r.rows[0].is_null(0) ? int64_t{0} : r.rows[0].int64(0);
    });
    Sequencer* q = sequencer();
    if (seq != 0 || !q || std::chrono::steady_clock::now() >= deadline) co_return seq;
    co_await q->next_round(deadline);
  }
}

}  // namespace keel::events
