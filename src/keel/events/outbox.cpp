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
  // Numbered after commit by the sequencer (sequencer.hpp), which the commit wakes. Nothing is read back,
  // so the insert goes out with the transaction's next statement or its COMMIT.
  s.defer(kInsert, values);
  s.after_commit([id = out.id] {
    if (Sequencer* q = sequencer()) q->committed(id);
  });
  return out;
}

}  // namespace keel::events
