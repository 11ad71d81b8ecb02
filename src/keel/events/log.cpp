#include "keel/events/log.hpp"

#include <boost/json.hpp>

namespace keel::events {

namespace json = boost::json;

namespace {
// Only these members of `data` (an object) are kept.
void keep_only(json::value& data, std::initializer_list<std::string_view> members) {
  json::object kept;
  if (auto* o = data.if_object())
    for (std::string_view m : members)
      if (auto* v = o->if_contains(m)) kept[m] = *v;
  data = std::move(kept);
}
}  // namespace

bool owns(const db::Row& r, std::string_view reader_user_id) {
  constexpr size_t subject = kEvent["subject"];
  return !reader_user_id.empty() && !r.is_null(subject) && r.text(subject) == reader_user_id;
}

json::object event_json(const db::Row& r, bool admin, bool owner) {
  boost::system::error_code ec;
  auto data = json::parse(r.text(kEvent["data"]), ec);
  const std::string& type = r.text(kEvent["type"]);
  const bool redact = !admin && type == "keel.auth.login.failed";
  if (redact) keep_only(data, {"ip"});
  if (!owner && (type == "keel.memory.created" || type == "keel.memory.updated"))
    keep_only(data, {"id", "namespace", "version"});
  constexpr size_t subject = kEvent["subject"], traceparent = kEvent["traceparent"];
  json::object e{
      {"id", r.text(kEvent["id"])},
      {"seq", r.int64(kEvent["seq"])},
      {"specversion", "1.0"},
      {"type", type},
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
