#include "keel/events/log.hpp"

#include <boost/json.hpp>

namespace keel::events {

namespace json = boost::json;

json::object event_json(const db::Row& r, bool admin) {
  boost::system::error_code ec;
  auto data = json::parse(r.text(kEvent["data"]), ec);
  const bool redact = !admin && r.text(kEvent["type"]) == "keel.auth.login.failed";
  if (redact) {
    json::object redacted;
    if (auto* o = data.if_object(); o && o->contains("ip")) redacted["ip"] = o->at("ip");
    data = std::move(redacted);
  }
  constexpr size_t subject = kEvent["subject"], traceparent = kEvent["traceparent"];
  json::object e{
      {"id", r.text(kEvent["id"])},
      {"seq", r.int64(kEvent["seq"])},
      {"specversion", "1.0"},
      {"type", r.text(kEvent["type"])},
      {"source", r.text(kEvent["source"])},
      {"subject", r.is_null(subject) || redact ? json::value(nullptr) : json::value(r.text(subject))},
      {"time", r.time(kEvent["time"])},
      {"datacontenttype", "application/json"},
      {"data", ec ? json::value(nullptr) : data}};
  if (!r.is_null(traceparent)) e["traceparent"] = r.text(traceparent);
  return e;
}

LogBounds log_bounds(db::Session& s) {
  LogBounds b;
  const auto last = s.query(s.dialect() == db::Dialect::Postgres
                                ? "SELECT last FROM event_sequence WHERE id = 1"
                                : "SELECT seq FROM sqlite_sequence WHERE name = 'observability_events'");
  b.last_given = last.empty() ? 0 : last.rows[0].int64(0);
  const int64_t oldest =
      s.query("SELECT COALESCE(MIN(seq), 0) FROM observability_events").rows.at(0).int64(0);
  b.first_kept = oldest > 0 ? oldest : b.last_given + 1;
  return b;
}

}  // namespace keel::events
