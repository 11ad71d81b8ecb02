#include "keel/events/outbox.hpp"

#include <boost/json/serialize.hpp>

#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"

namespace keel::events {

std::string append(db::Session& s, const NewEvent& e) {
  const std::string id = uuid_v7();
  const std::string now = now_rfc3339();
  s.query(
      "INSERT INTO observability_events (id, type, source, subject, time, data, traceparent, created_at, "
      "updated_at) "
      "VALUES ($1, $2, $3, $4, $5, $6, $7, $5, $5)",
      {id, e.type, e.source, e.subject.empty() ? db::Value(nullptr) : db::Value(e.subject), now,
       boost::json::serialize(e.data),
       e.traceparent.empty() ? db::Value(nullptr) : db::Value(e.traceparent)});
  return id;
}

}  // namespace keel::events
