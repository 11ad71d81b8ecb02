#include "keel/module/outbox.hpp"

#include <boost/json/serialize.hpp>

#include "keel/core/ids.hpp"
#include "keel/core/time.hpp"

namespace keel::module {

Appended Outbox::append(db::Session& s, const NewEvent& e) const {
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
  // Numbered after commit by the numbering, which the commit wakes. Nothing is read back, so the
  // insert goes out with the transaction's next statement or its COMMIT.
  s.defer(kInsert, values);
  // The numbering is read now, not at commit: the hook must not outlive a short-lived outbox.
  s.after_commit([n = numbering(), id = out.id]() mutable {
    if (n) n->committed(std::move(id));
  });
  return out;
}

std::vector<Appended> Outbox::append_all(db::Session& s, const std::vector<NewEvent>& events) const {
  std::vector<Appended> out;
  out.reserve(events.size());
  if (s.dialect() == db::Dialect::Sqlite || events.size() == 1) {
    for (const auto& e : events) out.push_back(append(s, e));
    return out;
  }
  std::vector<std::optional<std::string>> ids, types, sources, subjects, times, data, traceparents;
  for (auto* column : {&ids, &types, &sources, &subjects, &times, &data, &traceparents})
    column->reserve(events.size());
  auto or_null = [](const std::string& v) {
    return v.empty() ? std::nullopt : std::optional<std::string>(v);
  };
  for (const auto& e : events) {
    out.push_back(Appended{uuid_v7(), 0, now_rfc3339()});
    ids.emplace_back(out.back().id);
    types.emplace_back(e.type);
    sources.emplace_back(e.source);
    subjects.push_back(or_null(e.subject));
    times.emplace_back(out.back().time);
    data.emplace_back(boost::json::serialize(e.data));
    traceparents.push_back(or_null(e.traceparent));
  }
  s.defer(
      "INSERT INTO observability_events (id, type, source, subject, time, data, traceparent, created_at, "
      "updated_at) SELECT id, type, source, subject, time, data, traceparent, time, time FROM "
      "unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[], $7::text[]) "
      "AS e(id, type, source, subject, time, data, traceparent)",
      {db::array_literal(ids), db::array_literal(types), db::array_literal(sources),
       db::array_literal(subjects), db::array_literal(times), db::array_literal(data),
       db::array_literal(traceparents)});
  s.after_commit([n = numbering(), out] {
    if (n)
      for (const auto& a : out) n->committed(a.id);
  });
  return out;
}

}  // namespace keel::module
