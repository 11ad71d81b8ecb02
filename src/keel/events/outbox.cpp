#include "keel/events/outbox.hpp"

#include <boost/json/serialize.hpp>

#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"

namespace keel::events {

Appended append(db::Session& s, const NewEvent& e) {
  db::lock_for_transaction(s, db::LockKey::Outbox);
  Appended out{uuid_v7(), 0, now_rfc3339()};
  auto r = s.query(
      "INSERT INTO observability_events (id, type, source, subject, time, data, traceparent, created_at, "
      "updated_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $5, $5) RETURNING seq",
      {out.id, e.type, e.source, e.subject.empty() ? db::Value(nullptr) : db::Value(e.subject), out.time,
       boost::json::serialize(e.data),
       e.traceparent.empty() ? db::Value(nullptr) : db::Value(e.traceparent)});
  out.seq = r.rows.at(0).int64(0);
  return out;
}

}  // namespace keel::events
