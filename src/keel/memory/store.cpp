#include "keel/memory/store.hpp"

#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>
#include <cstring>

#include "keel/core/error.hpp"

namespace keel::memory {

namespace json = boost::json;

const std::string kColumns = kMemory.list("m");

namespace {

// kColumns without the table alias, for RETURNING (SQLite does not resolve the alias there).
const std::string kReturning = kMemory.list();
// What an update reads first: the memory, and its embedding to write back unchanged.
constexpr auto kStored = kMemory.with("embedding");
constexpr const char* kSource = "/keel/memory";

json::value parse_or(const std::string& text, json::value fallback) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? fallback : v;
}

std::string tags_json(const std::vector<std::string>& tags) {
  json::array a;
  for (const auto& t : tags) a.emplace_back(t);
  return json::serialize(a);
}

// One statement for all of a memory's tags, sent with the transaction's next statement.
void insert_tags(db::Session& s, const std::string& id, const std::string& user_id,
                 const std::vector<std::string>& tags) {
  if (tags.empty()) return;
  std::string sql = "INSERT INTO memory_tags (memory_id, user_id, tag) VALUES ";
  std::vector<db::Value> params{id, user_id};
  for (const auto& t : tags) {
    params.emplace_back(t);
    sql += (params.size() == 3 ? "($1, $2, $" : ", ($1, $2, $") + std::to_string(params.size()) + ")";
  }
  s.defer(sql, params);
}

// Creates the space on first use and takes its next vector_seq. The UPDATE holds the space's row lock until
// the transaction ends, so a space's sequence numbers commit in order on PostgreSQL too.
int64_t next_vector_seq(db::Session& s, const std::string& user_id, const std::string& ns, int dims,
                        const std::string& now) {
  if (dims > 0)
    s.query(
        "INSERT INTO memory_spaces (user_id, namespace, dims, vector_seq, created_at, updated_at) "
        "VALUES ($1, $2, $3, 0, $4, $4) ON CONFLICT (user_id, namespace) DO NOTHING",
        {user_id, ns, int64_t{dims}, now});
  auto r = s.query(
      "UPDATE memory_spaces SET vector_seq = vector_seq + 1, updated_at = $3 WHERE user_id = $1 AND "
      "namespace = "
      "$2 RETURNING dims, vector_seq",
      {user_id, ns, now});
  if (r.empty()) return 0;  // removing an embedding from a namespace that never had one
  const int64_t have = r.rows[0].int64(0);
  if (dims > 0 && have != dims) {
    // The namespace's dimension is that of the embeddings it holds; once none is left, a new one may differ.
    auto held = s.query(
        "SELECT 1 FROM memories WHERE user_id = $1 AND namespace = $2 AND embedding_dims IS NOT NULL LIMIT 1",
        {user_id, ns});
    if (!held.empty())
      throw Error::validation(
          {{"embedding", "must have " + std::to_string(have) +
                             " dimensions, like the other embeddings in namespace '" + ns + "'"}});
    s.query("UPDATE memory_spaces SET dims = $3 WHERE user_id = $1 AND namespace = $2",
            {user_id, ns, int64_t{dims}});
  }
  return r.rows[0].int64(1);
}

db::Value blob_or_null(const std::optional<std::vector<float>>& e) {
  if (!e) return nullptr;
  return db::Blob{embedding_blob(*e)};
}

db::Value dims_or_null(const std::optional<std::vector<float>>& e) {
  if (!e) return nullptr;
  return static_cast<int64_t>(e->size());
}

db::Value text_or_null(const std::optional<std::string>& t) {
  if (!t) return nullptr;
  return *t;
}

}  // namespace

json::object memory_json(const db::Row& r) {
  constexpr size_t dims = kMemory["embedding_dims"], expires = kMemory["expires_at"];
  return {{"id", r.text(kMemory["id"])},
          {"namespace", r.text(kMemory["namespace"])},
          {"content", r.text(kMemory["content"])},
          {"metadata", parse_or(r.text(kMemory["metadata"]), json::object())},
          {"tags", parse_or(r.text(kMemory["tags"]), json::array())},
          {"embedding_dims", r.is_null(dims) ? json::value(nullptr) : json::value(r.int64(dims))},
          {"version", r.int64(kMemory["version"])},
          {"created_at", r.time(kMemory["created_at"])},
          {"updated_at", r.time(kMemory["updated_at"])},
          {"expires_at", r.is_null(expires) ? json::value(nullptr) : json::value(r.time(expires))}};
}

void add_not_expired(const std::string& now, std::string& sql, std::vector<db::Value>& params) {
  params.emplace_back(now);
  sql += " AND (m.expires_at IS NULL OR m.expires_at > $" + std::to_string(params.size()) + ")";
}

void add_filters(db::Dialect dialect, const Filters& f, std::string& sql, std::vector<db::Value>& params) {
  auto next = [&](db::Value v) {
    params.push_back(std::move(v));
    return fmt::format("${}", params.size());
  };
  if (f.ns) sql += " AND m.namespace = " + next(*f.ns);
  for (const auto& t : f.tags)
    sql += " AND EXISTS (SELECT 1 FROM memory_tags t WHERE t.memory_id = m.id AND t.tag = " + next(t) + ")";
  for (const auto& [key, value] : f.metadata) {
    const std::string k = next(std::string(key));
    if (dialect == db::Dialect::Postgres) {
      sql += " AND m.metadata -> " + k + " = " + next(json::serialize(value)) + "::jsonb";
      continue;
    }
    // SQLite: json_each's type tells JSON's types apart (true is not 1, "1" is not 1).
    sql += " AND EXISTS (SELECT 1 FROM json_each(m.metadata) j WHERE j.key = " + k;
    switch (value.kind()) {
      case json::kind::string:
        sql += " AND j.type = 'text' AND j.value = " + next(std::string(value.as_string()));
        break;
      case json::kind::int64:
        sql += " AND j.type IN ('integer', 'real') AND j.value = " + next(value.as_int64());
        break;
      case json::kind::uint64:
      case json::kind::double_:
        sql += " AND j.type IN ('integer', 'real') AND j.value = " + next(value.to_number<double>());
        break;
      case json::kind::bool_:
        sql += value.as_bool() ? " AND j.type = 'true'" : " AND j.type = 'false'";
        break;
      case json::kind::null:
        sql += " AND j.type = 'null'";
        break;
      default:
        sql += " AND j.type IN ('object', 'array') AND j.value = json(" + next(json::serialize(value)) + ")";
    }
    sql += ")";
  }
}

std::string embedding_blob(const std::vector<float>& v) {
  std::string out(v.size() * sizeof(float), '\0');
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

std::vector<float> embedding_from_blob(const std::string& bytes) {
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

db::Row insert_memory(db::Session& s, const module::Outbox& outbox, const NewMemory& m) {
  const Fields& f = m.fields;
  int64_t seq = 0;
  if (f.embedding) seq = next_vector_seq(s, m.user_id, m.ns, static_cast<int>(f.embedding->size()), m.now);
  auto r = s.query(
      std::string(
          "INSERT INTO memories (id, user_id, namespace, content, metadata, tags, embedding, "
          "embedding_dims, vector_seq, version, created_at, updated_at, expires_at) VALUES ($1, $2, $3, "
          "$4, $5, $6, $7, $8, $9, 1, $10, $10, $11) RETURNING ") +
          kReturning,
      {m.id, m.user_id, m.ns, f.content, f.metadata, tags_json(f.tags), blob_or_null(f.embedding),
       dims_or_null(f.embedding), seq, m.now, text_or_null(f.expires_at)});
  insert_tags(s, m.id, m.user_id, f.tags);
  outbox.append(s, {"keel.memory.created", kSource, m.user_id, memory_json(r.rows.at(0)), m.traceparent});
  return r.rows.at(0);
}

bool if_match_allows(std::string_view header, int64_t version) {
  if (header.empty()) return true;
  // A list of entity tags: "3", W/"3", 3 or *.
  size_t i = 0;
  while (i < header.size()) {
    size_t j = header.find(',', i);
    if (j == std::string_view::npos) j = header.size();
    std::string_view tag = header.substr(i, j - i);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t')) tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t')) tag.remove_suffix(1);
    if (tag == "*") return true;
    if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
    if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"') tag = tag.substr(1, tag.size() - 2);
    int64_t n = -1;
    auto [end, ec] = std::from_chars(tag.data(), tag.data() + tag.size(), n);
    if (ec == std::errc() && end == tag.data() + tag.size() && n == version) return true;
    i = j + 1;
  }
  return false;
}

db::Row update_memory(db::Session& s, const module::Outbox& outbox, const std::string& user_id,
                      const std::string& id, const Change& c, std::string_view if_match,
                      const std::string& now, const std::string& traceparent, int64_t versions_kept) {
  std::string sql = "SELECT " + kStored.list("m") + " FROM memories m WHERE m.id = $1 AND m.user_id = $2";
  std::vector<db::Value> params{id, user_id};
  add_not_expired(now, sql, params);
  if (s.dialect() == db::Dialect::Postgres) sql += " FOR UPDATE";
  auto cur = s.query(sql, params);
  if (cur.empty()) throw Error::not_found("no such memory");
  const db::Row& old = cur.rows[0];
  const int64_t version = old.int64(kStored["version"]);
  if (!if_match_allows(if_match, version))
    throw Error(412, "Precondition Failed",
                "If-Match names another version; the memory is at version " + std::to_string(version));
  if (c.empty()) return old;
  const std::string ns = old.text(kStored["namespace"]);
  if (versions_kept > 0)
    s.defer(
        "INSERT INTO memory_versions (memory_id, version, namespace, content, metadata, tags, "
        "embedding_dims, "
        "expires_at, updated_at) SELECT id, version, namespace, content, metadata, tags, embedding_dims, "
        "expires_at, updated_at FROM memories WHERE id = $1",
        {id});
  // The history keeps its newest versions_kept: a memory edited all day does not grow without bound.
  if (version - versions_kept >= 1)
    s.defer("DELETE FROM memory_versions WHERE memory_id = $1 AND version <= $2",
            {id, version - versions_kept});
  // Unchanged columns are written back as they are, so one statement serves every change.
  constexpr size_t kEmbedding = kStored["embedding"], kDims = kStored["embedding_dims"];
  constexpr size_t kExpires = kStored["expires_at"];
  db::Value embedding =
      old.is_null(kEmbedding) ? db::Value(nullptr) : db::Value(db::Blob{old.text(kEmbedding)});
  db::Value dims = old.is_null(kDims) ? db::Value(nullptr) : db::Value(old.int64(kDims));
  std::optional<int64_t> seq;
  if (c.set_embedding && (c.embedding || !old.is_null(kDims))) {
    seq = next_vector_seq(s, user_id, ns, c.embedding ? static_cast<int>(c.embedding->size()) : 0, now);
    embedding = blob_or_null(c.embedding);
    dims = dims_or_null(c.embedding);
  }
  db::Value expires = old.is_null(kExpires) ? db::Value(nullptr) : db::Value(old.text(kExpires));
  if (c.set_expiry) expires = text_or_null(c.expires_at);
  auto r = s.query(
      std::string(
          "UPDATE memories SET content = $2, metadata = $3, tags = $4, embedding = $5, embedding_dims "
          "= $6, vector_seq = COALESCE($7, vector_seq), version = version + 1, updated_at = $8, "
          "expires_at = $9 WHERE id = $1 RETURNING ") +
          kReturning,
      {id, c.content.value_or(old.text(kStored["content"])),
       c.metadata.value_or(old.text(kStored["metadata"])),
       c.tags ? db::Value(tags_json(*c.tags)) : db::Value(old.text(kStored["tags"])), embedding, dims,
       seq ? db::Value(*seq) : db::Value(nullptr), now, expires});
  if (c.tags) {
    s.query("DELETE FROM memory_tags WHERE memory_id = $1", {id});
    insert_tags(s, id, user_id, *c.tags);
  }
  outbox.append(s, {"keel.memory.updated", kSource, user_id, memory_json(r.rows.at(0)), traceparent});
  return r.rows.at(0);
}

std::optional<std::pair<std::string, bool>> delete_memory(db::Session& s, const module::Outbox& outbox,
                                                          const std::string& user_id, const std::string& id,
                                                          const std::string& now,
                                                          const std::string& traceparent) {
  std::string sql = "DELETE FROM memories AS m WHERE m.id = $1 AND m.user_id = $2";
  std::vector<db::Value> params{id, user_id};
  add_not_expired(now, sql, params);
  auto r = s.query(sql + " RETURNING namespace, embedding_dims", params);
  if (r.empty()) return std::nullopt;
  outbox.append(s, {"keel.memory.deleted", kSource, user_id,
                    json::object{{"id", id}, {"namespace", r.rows[0].text(0)}}, traceparent});
  return std::make_pair(r.rows[0].text(0), !r.rows[0].is_null(1));
}

int64_t sweep_expired(db::Session& s, const std::string& now, int64_t batch) {
  auto r = s.query(
      "DELETE FROM memories WHERE id IN (SELECT id FROM memories WHERE expires_at IS NOT NULL AND expires_at "
      "<= $1 "
      "LIMIT $2)",
      {now, batch});
  return r.affected;
}

int64_t forget_old_versions(db::Session& s, const std::string& horizon, int64_t batch) {
  return s
      .query(
          "DELETE FROM memory_versions WHERE (memory_id, version) IN (SELECT memory_id, version FROM "
          "memory_versions WHERE updated_at < $1 LIMIT $2)",
          {horizon, batch})
      .affected;
}

int space_dims(db::Session& s, const std::string& user_id, const std::string& ns) {
  auto r = s.query("SELECT dims FROM memory_spaces WHERE user_id = $1 AND namespace = $2", {user_id, ns});
  return r.empty() ? 0 : static_cast<int>(r.rows[0].int64(0));
}

std::vector<std::string> spaces_with_dims(db::Session& s, const std::string& user_id, int dims) {
  auto r = s.query("SELECT namespace FROM memory_spaces WHERE user_id = $1 AND dims = $2 ORDER BY namespace",
                   {user_id, int64_t{dims}});
  std::vector<std::string> out;
  for (const auto& row : r.rows) out.push_back(row.text(0));
  return out;
}

std::vector<VectorUpdate> vector_changes(db::Session& s, const std::string& user_id, const std::string& ns,
                                         int64_t after_seq, int64_t limit) {
  // `vector_seq > 0` lets both planners use the partial index; it comes second because SQLite seeks with
  // the first bound it meets, and seeking from 0 would walk the whole space on every search.
  auto r = s.query(
      "SELECT id, embedding, vector_seq FROM memories WHERE user_id = $1 AND namespace = $2 AND vector_seq > "
      "$3 "
      "AND vector_seq > 0 ORDER BY vector_seq LIMIT $4",
      {user_id, ns, after_seq, limit});
  std::vector<VectorUpdate> out;
  out.reserve(r.rows.size());
  for (const auto& row : r.rows) {
    VectorUpdate u{row.text(0), row.int64(2), std::nullopt};
    if (!row.is_null(1)) {
      auto v = embedding_from_blob(row.text(1));
      if (normalize(v)) u.embedding = std::move(v);
    }
    out.push_back(std::move(u));
  }
  return out;
}

}  // namespace keel::memory
