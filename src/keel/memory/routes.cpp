#include "keel/memory/routes.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <mutex>
#include <regex>
#include <unordered_map>
#include <unordered_set>

#include "keel/app/modules.hpp"
#include "keel/core/config.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/http/json_body.hpp"
#include "keel/http/pagination.hpp"
#include "keel/http/router.hpp"
#include "keel/memory/settings.hpp"
#include "keel/memory/store.hpp"
#include "keel/module/caller.hpp"
#include "keel/module/idempotency.hpp"

namespace keel::memory {

namespace json = boost::json;
namespace net = boost::asio;
using http::Access;
using http::Method;
using http::Request;
using http::Response;
using Awaitable = net::awaitable<Response>;

namespace {

constexpr size_t kMaxContentBytes = 64 * 1024;
constexpr size_t kMaxMetadataBytes = 64 * 1024;
constexpr size_t kMaxTags = 32;
constexpr size_t kMaxDims = 4096;
constexpr int64_t kMaxTtlSeconds = int64_t{100} * 365 * 24 * 3600;
constexpr int64_t kCatchUpBatch = 5000;
// A filtered vector search scores the filter's matches exactly when there are at most this many.
constexpr size_t kExactFilterLimit = 50000;
// Reciprocal rank fusion's constant (Cormack et al.): a document's fused score is sum 1 / (k + rank).
constexpr double kRrfK = 60;

const std::regex kNamespace("[a-z0-9._-]{1,64}");

// Document frequencies of search words across the full-text index, counted up to a cap and cached for five
// minutes: keel_bm25 takes them as arguments, so a query does not recount every row of a common word to rank.
class TermStats {
 public:
  // Each term's count, or cap + 1 for "more than cap".
  std::vector<int64_t> document_frequencies(db::Session& s, const std::vector<std::string>& terms,
                                            int64_t cap) {
    const auto now = std::chrono::steady_clock::now();
    std::vector<int64_t> out(terms.size(), -1);
    {
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < terms.size(); ++i) {
        auto it = cache_.find(terms[i]);
        if (it != cache_.end() && now - it->second.second < kTtl) out[i] = it->second.first;
      }
    }
    for (size_t i = 0; i < terms.size(); ++i) {
      if (out[i] >= 0) continue;
      out[i] =
          s.query("SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH $1 LIMIT $2)",
                  {"content : \"" + terms[i] + "\"", cap + 1})
              .rows.at(0)
              .int64(0);
      std::lock_guard lock(mu_);
      if (cache_.size() > 100000) cache_.clear();
      cache_[terms[i]] = {out[i], now};
    }
    return out;
  }

 private:
  static constexpr auto kTtl = std::chrono::seconds(300);
  std::mutex mu_;
  std::unordered_map<std::string, std::pair<int64_t, std::chrono::steady_clock::time_point>> cache_;
};

struct Memories {
  explicit Memories(VectorSettings vs) : index(vs) {}
  db::Database* db = nullptr;
  VectorIndex index;
  TermStats terms;
  // A word in more memories than this is common. A query with rarer words ranks every memory matching those
  // (the common words would add little: their IDF is small); a query of only common words ranks this many of
  // the newest memories that match.
  int64_t common_word_rows = 500;
  std::chrono::milliseconds sweep_interval{30000};
  int64_t versions_kept = 20;          // a memory's past versions kept (the newest)
  int64_t versions_max_age_days = 90;  // a past version older than this goes (0: kept while the memory is)
};

std::string expiry_after(int64_t seconds) {
  return format_rfc3339(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

Response memory_response(int status, const db::Row& row) {
  Response r = Response::json(status, memory_json(row));
  r.headers.emplace_back("ETag", fmt::format("\"{}\"", row.int64(6)));
  return r;
}

// --- request bodies -------------------------------------------------------------------------------------

std::optional<std::string> read_namespace(http::Validator& v, const json::object& body) {
  auto ns = v.optional_string("namespace", 1, 64);
  if (ns && !std::regex_match(*ns, kNamespace)) {
    v.fail("namespace", "must match [a-z0-9._-]{1,64}");
    return std::nullopt;
  }
  return ns;
}

std::optional<std::string> read_content(http::Validator& v, const json::object& body, bool required) {
  if (required && !body.contains("content")) {
    v.fail("content", "is required");
    return std::nullopt;
  }
  auto c = v.optional_string("content", 1, kMaxContentBytes);
  if (c && c->size() > kMaxContentBytes) {
    v.fail("content", "must be at most 64 KiB");
    return std::nullopt;
  }
  if (required && body.contains("content") && body.at("content").is_null()) v.fail("content", "is required");
  return c;
}

std::optional<std::string> read_metadata(http::Validator& v, const json::object& body) {
  auto m = v.optional_object("metadata");
  if (!m) return std::nullopt;
  std::string text = json::serialize(*m);
  if (text.size() > kMaxMetadataBytes) {
    v.fail("metadata", "must be at most 64 KiB as JSON");
    return std::nullopt;
  }
  return text;
}

std::optional<std::vector<std::string>> read_tags(http::Validator& v, const json::object& body) {
  auto it = body.find("tags");
  if (it == body.end() || it->value().is_null()) return std::nullopt;
  if (!it->value().is_array()) {
    v.fail("tags", "must be an array of strings");
    return std::nullopt;
  }
  const auto& arr = it->value().as_array();
  if (arr.size() > kMaxTags) {
    v.fail("tags", "must hold at most 32 tags");
    return std::nullopt;
  }
  std::vector<std::string> tags;
  for (const auto& t : arr) {
    if (!t.is_string()) {
      v.fail("tags", "must be an array of strings");
      return std::nullopt;
    }
    std::string s(t.as_string());
    const size_t len = http::utf8_length(s);
    bool control = false;
    for (unsigned char ch : s) control |= ch < 0x20 || ch == 0x7f;
    if (len == 0 || len > 64 || control) {
      v.fail("tags", "each tag must be 1 to 64 characters, without control characters");
      return std::nullopt;
    }
    if (std::find(tags.begin(), tags.end(), s) == tags.end()) tags.push_back(std::move(s));
  }
  return tags;
}

// nullopt: absent or invalid (failed on v); an engaged nullopt inside: an explicit null.
std::optional<std::optional<std::vector<float>>> read_embedding(http::Validator& v,
                                                                const json::object& body) {
  auto it = body.find("embedding");
  if (it == body.end()) return std::nullopt;
  if (it->value().is_null()) return std::optional<std::vector<float>>();
  if (!it->value().is_array() || it->value().as_array().empty() || it->value().as_array().size() > kMaxDims) {
    v.fail("embedding", "must be an array of 1 to 4096 numbers");
    return std::nullopt;
  }
  std::vector<float> out;
  out.reserve(it->value().as_array().size());
  for (const auto& x : it->value().as_array()) {
    if (!x.is_number()) {
      v.fail("embedding", "must be an array of 1 to 4096 numbers");
      return std::nullopt;
    }
    const double d = x.to_number<double>();
    const auto f = static_cast<float>(d);
    if (!std::isfinite(d) || !std::isfinite(f)) {
      v.fail("embedding", "holds a number outside float32's range");
      return std::nullopt;
    }
    out.push_back(f);
  }
  auto check = out;
  if (!normalize(check)) {
    v.fail("embedding", "must not be all zeros");
    return std::nullopt;
  }
  return std::optional<std::vector<float>>(std::move(out));
}

// nullopt: absent or invalid; an engaged nullopt inside: an explicit null (no expiry).
std::optional<std::optional<std::string>> read_ttl(http::Validator& v, const json::object& body) {
  auto it = body.find("ttl_seconds");
  if (it == body.end()) return std::nullopt;
  if (it->value().is_null()) return std::optional<std::string>();
  auto ttl = v.optional_int("ttl_seconds", 1, kMaxTtlSeconds);
  if (!ttl) return std::nullopt;
  return std::optional<std::string>(expiry_after(*ttl));
}

Filters read_filters(http::Validator& v, const json::object& body) {
  Filters f;
  f.ns = read_namespace(v, body);
  f.tags = read_tags(v, body).value_or(std::vector<std::string>{});
  if (auto m = v.optional_object("metadata")) f.metadata = std::move(*m);
  return f;
}

// --- search ---------------------------------------------------------------------------------------------

// Words of the query: runs of letters and digits (any non-ASCII byte counts as a letter), at most 32.
std::vector<std::string> query_terms(const std::string& q) {
  std::vector<std::string> terms;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty() && terms.size() < 32 && std::find(terms.begin(), terms.end(), cur) == terms.end())
      terms.push_back(cur);
    cur.clear();
  };
  for (unsigned char ch : q) {
    if (std::isalnum(ch) || ch >= 0x80)
      cur.push_back(static_cast<char>(ch));
    else
      flush();
  }
  flush();
  return terms;
}

std::string hex_lower(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

using Scored = std::vector<std::pair<db::Row, double>>;

// SQLite's full text: FTS5, ranked by keel_bm25. Rare words decide which memories qualify; common ones would
// add little (their IDF is small) and are left out. The best matches of anyone's are ranked inside the index
// and only those rows are joined to the table (which keeps the user's and applies the filters), asking for
// more when too few survive: that is bounded, the words being rare. A query of only common words ranks the
// `common` newest matches among the user's memories, found through the scope column's tokens (see
// 0005_memory.sql; phrase 0, which does not score).
Scored sqlite_text_search(db::Session& s, TermStats& stats, int64_t common, const std::string& user_id,
                          const std::vector<std::string>& terms, const Filters& f, const std::string& now,
                          int64_t limit) {
  const auto df = stats.document_frequencies(s, terms, common);
  std::vector<size_t> chosen;
  int64_t matches = 0;
  for (size_t i = 0; i < terms.size(); ++i)
    if (df[i] <= common) {
      chosen.push_back(i);
      matches += df[i];
    }
  int64_t window = -1;  // no limit: every memory with a rare word
  const bool only_common = chosen.empty();
  if (only_common) {
    for (size_t i = 0; i < terms.size(); ++i) chosen.push_back(i);
    window = common;
    matches = common;
  }
  std::string words, dfs;
  std::vector<db::Value> base{std::string(), user_id, window, int64_t{0}};
  for (size_t i : chosen) {
    words += (words.empty() ? "\"" : " OR \"") + terms[i] + "\"";
    base.emplace_back(df[i]);
    dfs += (dfs.empty() ? "$" : ", $") + std::to_string(base.size());
  }
  auto sql_for = [&](bool scoped) {
    std::string sql = std::string("SELECT ") + kColumns +
                      ", f.score FROM (SELECT rid, score FROM (SELECT rowid AS rid, keel_bm25(" +
                      "memories_fts, " + (scoped ? "-1, " : "") + dfs +
                      ") AS score FROM memories_fts WHERE memories_fts MATCH $1 ORDER BY rowid DESC LIMIT "
                      "$3) ORDER BY score DESC "
                      "LIMIT $4) AS f JOIN memories m ON m.rowid = f.rid WHERE m.user_id = $2";
    add_not_expired(now, sql, base);
    add_filters(s.dialect(), f, sql, base);
    base.emplace_back(limit);
    return sql + " ORDER BY f.score DESC, m.id DESC LIMIT $" + std::to_string(base.size());
  };
  const size_t fixed = base.size();
  const int64_t bound = matches + matches / 10 + 100;  // the counts may be minutes old
  // Common words alone: the newest matches of anyone's first, then, when they hold too few of the user's
  // memories, the newest of the user's (the scope token, phrase 0, does not score).
  for (bool scoped : {false, true}) {
    if (scoped && !only_common) break;
    base.resize(fixed);
    base[0] = "content : (" + words + ")";
    if (scoped) {
      std::string uid = user_id;
      uid.erase(std::remove(uid.begin(), uid.end(), '-'), uid.end());
      const std::string scope = f.ns ? "n" + uid + hex_lower(*f.ns) + "0" : "u" + uid + "0";
      base[0] = "scope : \"" + scope + "\" AND content : (" + words + ")";
    }
    const std::string sql = sql_for(scoped);
    for (int64_t best = f.any() ? limit * 16 + 64 : limit * 2 + 16;; best *= 8) {
      base[3] = best;
      auto r = s.query(sql, base);
      if (static_cast<int64_t>(r.rows.size()) >= limit || best >= bound) {
        if (static_cast<int64_t>(r.rows.size()) < limit && only_common && !scoped) break;
        Scored out;
        for (auto& row : r.rows) out.emplace_back(row, row.real(10));
        return out;
      }
    }
  }
  return {};
}

// Full text: BM25 on SQLite (above), ts_rank on PostgreSQL; any of the words matches, better matches first.
Scored text_search(db::Session& s, TermStats& stats, int64_t common, const std::string& user_id,
                   const std::vector<std::string>& terms, const Filters& f, const std::string& now,
                   int64_t limit) {
  if (s.dialect() == db::Dialect::Sqlite)
    return sqlite_text_search(s, stats, common, user_id, terms, f, now, limit);
  std::string words;
  for (const auto& t : terms) words += (words.empty() ? "\"" : " or \"") + t + "\"";
  std::vector<db::Value> params{words, user_id};
  std::string sql =
      std::string("SELECT ") + kColumns +
      ", ts_rank(m.fts, q.q) FROM memories m, websearch_to_tsquery('english', $1) AS q(q) WHERE "
      "m.user_id = $2 AND m.fts @@ q.q";
  add_not_expired(now, sql, params);
  add_filters(s.dialect(), f, sql, params);
  params.emplace_back(limit);
  sql += " ORDER BY 11 DESC, m.id DESC LIMIT $" + std::to_string(params.size());
  auto r = s.query(sql, params);
  Scored out;
  for (auto& row : r.rows) out.emplace_back(row, row.real(10));
  return out;
}

// Brings this process's copy of the space up to the database's vector_seq.
void catch_up(db::Session& s, VectorIndex& index, const std::string& user_id, const std::string& ns,
              int dims) {
  for (;;) {
    const auto rows = vector_changes(s, user_id, ns, index.applied_seq(user_id, ns, dims), kCatchUpBatch);
    index.apply(user_id, ns, dims, rows);
    if (static_cast<int64_t>(rows.size()) < kCatchUpBatch) return;
  }
}

// The rows behind vector hits that still exist, are not expired and pass the filters, in hit order.
Scored verify_hits(db::Session& s, const std::string& user_id, const std::vector<VectorHit>& hits,
                   const Filters& f, const std::string& now) {
  Scored out;
  if (hits.empty()) return out;
  std::string sql = std::string("SELECT ") + kColumns + " FROM memories m WHERE m.user_id = $1 AND m.id IN (";
  std::vector<db::Value> params{user_id};
  for (const auto& h : hits) {
    params.emplace_back(h.id);
    sql += (params.size() == 2 ? "$" : ", $") + std::to_string(params.size());
  }
  sql += ")";
  add_not_expired(now, sql, params);
  Filters rest = f;
  rest.ns.reset();  // the hits come from one space already
  add_filters(s.dialect(), rest, sql, params);
  auto r = s.query(sql, params);
  std::unordered_map<std::string, size_t> at;
  for (size_t i = 0; i < r.rows.size(); ++i) at.emplace(r.rows[i].text(0), i);
  for (const auto& h : hits) {
    auto it = at.find(h.id);
    if (it != at.end()) out.emplace_back(r.rows[it->second], h.score);
  }
  return out;
}

Scored vector_search_space(db::Session& s, VectorIndex& index, const std::string& user_id,
                           const std::string& ns, const std::vector<float>& q, const Filters& f,
                           const std::string& now, size_t k) {
  catch_up(s, index, user_id, ns, static_cast<int>(q.size()));
  if (f.any()) {
    // Score exactly the memories that pass the filters, unless there are too many to score quickly.
    std::string sql =
        "SELECT m.id FROM memories m WHERE m.user_id = $1 AND m.namespace = $2 AND m.embedding_dims "
        "IS NOT NULL";
    std::vector<db::Value> params{user_id, ns};
    add_not_expired(now, sql, params);
    Filters rest = f;
    rest.ns.reset();
    add_filters(s.dialect(), rest, sql, params);
    params.emplace_back(static_cast<int64_t>(kExactFilterLimit + 1));
    auto r = s.query(sql + " LIMIT $" + std::to_string(params.size()), params);
    if (r.rows.size() <= kExactFilterLimit) {
      std::unordered_set<std::string> allowed;
      for (const auto& row : r.rows) allowed.insert(row.text(0));
      return verify_hits(s, user_id, index.search(user_id, ns, q, k, &allowed), f, now);
    }
  }
  // Ask the index for more until enough hits survive the database's check (deleted elsewhere, expired,
  // filtered out), or the whole space has been asked.
  const size_t size = index.space_size(user_id, ns);
  for (size_t want = k;; want *= 4) {
    auto hits = index.search(user_id, ns, q, want);
    auto rows = verify_hits(s, user_id, hits, f, now);
    if (!f.any() && rows.size() < hits.size()) {
      std::unordered_set<std::string> alive;
      for (const auto& [row, score] : rows) alive.insert(row.text(0));
      for (const auto& h : hits)
        if (!alive.contains(h.id)) index.remove(user_id, ns, h.id);  // gone for good: deleted or expired
    }
    if (rows.size() >= k || hits.size() < want || want >= size) {
      if (rows.size() > k) rows.resize(k);
      return rows;
    }
  }
}

Scored vector_search(db::Session& s, VectorIndex& index, const std::string& user_id,
                     const std::vector<float>& q, const Filters& f, const std::string& now, size_t k) {
  std::vector<std::string> spaces;
  if (f.ns) {
    const int dims = space_dims(s, user_id, *f.ns);
    if (dims == 0) return {};
    if (dims != static_cast<int>(q.size()))
      throw Error::validation(
          {{"embedding", "must have " + std::to_string(dims) +
                             " dimensions, like the embeddings in namespace '" + *f.ns + "'"}});
    spaces.push_back(*f.ns);
  } else {
    spaces = spaces_with_dims(s, user_id, static_cast<int>(q.size()));
  }
  Scored all;
  for (const auto& ns : spaces) {
    auto part = vector_search_space(s, index, user_id, ns, q, f, now, k);
    all.insert(all.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (all.size() > k) all.resize(k);
  return all;
}

// Reciprocal rank fusion of two rankings.
Scored fuse(const Scored& a, const Scored& b, size_t k) {
  std::unordered_map<std::string, size_t> at;
  Scored out;
  for (const Scored* list : {&a, &b}) {
    for (size_t i = 0; i < list->size(); ++i) {
      const auto& [row, score] = (*list)[i];
      const double add = 1.0 / (kRrfK + static_cast<double>(i + 1));
      auto [it, inserted] = at.emplace(row.text(0), out.size());
      if (inserted)
        out.emplace_back(row, add);
      else
        out[it->second].second += add;
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.second > y.second; });
  if (out.size() > k) out.resize(k);
  return out;
}

// --- background work ------------------------------------------------------------------------------------

// Deletes expired memories in batches (reads already hide them).
net::awaitable<void> sweep(std::shared_ptr<Memories> m) {
  const auto ex = co_await net::this_coro::executor;
  net::steady_timer timer(ex);
  for (;;) {
    timer.expires_after(m->sweep_interval);
    co_await timer.async_wait(net::use_awaitable);
    try {
      int64_t total = 0;
      for (;;) {
        const std::string now = now_rfc3339();
        const int64_t n = co_await m->db->write([&](db::Session& s) { return sweep_expired(s, now, 1000); });
        total += n;
        if (n < 1000) break;
      }
      if (total > 0) log::info("expired memories deleted", {{"count", total}});
      if (m->versions_max_age_days > 0) {
        const std::string horizon = format_rfc3339(std::chrono::system_clock::now() -
                                                   std::chrono::hours(24 * m->versions_max_age_days));
        for (;;) {
          const int64_t n =
              co_await m->db->write([&](db::Session& s) { return forget_old_versions(s, horizon, 1000); });
          if (n < 1000) break;
        }
      }
    } catch (const std::exception& e) {
      log::warn("memory sweep failed", {{"error", e.what()}});
    }
  }
}

// Loads every vector space into the index at start (graphs are then built in the background).
net::awaitable<void> load_spaces(std::shared_ptr<Memories> m) {
  try {
    const auto started = std::chrono::steady_clock::now();
    auto spaces = co_await m->db->read([](db::Session& s) {
      return s.query("SELECT user_id, namespace, dims FROM memory_spaces ORDER BY user_id, namespace");
    });
    for (const auto& row : spaces.rows) {
      const std::string user_id = row.text(0), ns = row.text(1);
      const int dims = static_cast<int>(row.int64(2));
      co_await m->db->read([&](db::Session& s) { catch_up(s, m->index, user_id, ns, dims); });
    }
    const auto st = m->index.stats();
    log::info("memory vectors loaded",
              {{"spaces", static_cast<int64_t>(st.spaces)},
               {"vectors", static_cast<int64_t>(st.vectors)},
               {"ms", static_cast<int64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                               std::chrono::steady_clock::now() - started)
                                               .count())}});
  } catch (const std::exception& e) {
    log::warn("loading memory vectors failed; searches load them as they go", {{"error", e.what()}});
  }
}

VectorSettings vector_settings(const Config& c) {
  VectorSettings v;
  v.hnsw_threshold = static_cast<size_t>(settings::hnsw_threshold.integer(c));
  v.m = static_cast<size_t>(settings::hnsw_m.integer(c));
  v.ef_construction = static_cast<size_t>(settings::hnsw_ef_construction.integer(c));
  v.ef_search = static_cast<size_t>(settings::hnsw_ef_search.integer(c));
  return v;
}

}  // namespace

namespace {
// The module's routes, each with who may call it. `m` is null when they are only declared (declare()):
// their handlers are then never called.
void add_routes(http::Router& r, std::shared_ptr<Memories> m) {
  r.add(Method::Post, "/v1/memories", Access::user(), [m](Request& req) -> Awaitable {
    const std::string& user_id = module::caller(req).user_id;
    const auto body = http::parse_json_object(req);
    http::Validator v(body);
    NewMemory nm;
    nm.fields.content = read_content(v, body, true).value_or("");
    nm.ns = read_namespace(v, body).value_or("default");
    nm.fields.metadata = read_metadata(v, body).value_or("{}");
    nm.fields.tags = read_tags(v, body).value_or(std::vector<std::string>{});
    if (auto e = read_embedding(v, body)) nm.fields.embedding = std::move(*e);
    if (auto t = read_ttl(v, body)) nm.fields.expires_at = std::move(*t);
    v.check();
    nm.id = fast_uuid_v7();
    nm.user_id = user_id;
    nm.now = now_rfc3339();
    nm.traceparent = req.trace.traceparent();
    // Named first: no temporaries inside the co_await (README, "Developing").
    const auto idempotency = module::Idempotency::of(req, "memory:" + user_id);
    const std::function<Response(db::Session&)> create = [&](db::Session& s) {
      return memory_response(201, insert_memory(s, nm));
    };
    co_return co_await module::create_once(*m->db, idempotency, create);
  });

  r.add(Method::Get, "/v1/memories", Access::user(), [m](Request& req) -> Awaitable {
    const std::string& user_id = module::caller(req).user_id;
    const http::Page page = http::parse_page(req);
    if (page.after && !is_uuid(*page.after))
      throw Error::bad_request("the cursor is not one this server issued");
    Filters f;
    f.ns = req.query_param("namespace");
    if (f.ns && !std::regex_match(*f.ns, kNamespace))
      throw Error::validation({{"namespace", "must match [a-z0-9._-]{1,64}"}});
    if (auto tag = req.query_param("tag")) f.tags.push_back(*tag);
    const std::string now = now_rfc3339();
    auto rows = co_await m->db->read([&](db::Session& s) {
      std::string sql = std::string("SELECT ") + kColumns + " FROM memories m WHERE m.user_id = $1";
      std::vector<db::Value> params{user_id};
      add_not_expired(now, sql, params);
      add_filters(s.dialect(), f, sql, params);
      if (page.after) {
        params.emplace_back(*page.after);
        sql += " AND m.id < $" + std::to_string(params.size());
      }
      params.emplace_back(int64_t{page.limit});
      return s.query(sql + " ORDER BY m.id DESC LIMIT $" + std::to_string(params.size()), params);
    });
    co_return Response::json(
        200, http::page_of(rows.rows, page, memory_json, [](const db::Row& row) { return row.text(0); }));
  });

  r.add(Method::Post, "/v1/memories/search", Access::user(), [m](Request& req) -> Awaitable {
    const std::string& user_id = module::caller(req).user_id;
    const auto body = http::parse_json_object(req);
    http::Validator v(body);
    const auto query = v.optional_string("query", 1, 4096);
    std::optional<std::vector<float>> embedding;
    if (auto e = read_embedding(v, body)) embedding = std::move(*e);
    if (embedding) normalize(*embedding);  // cosine: the stored vectors are unit length too
    const Filters f = read_filters(v, body);
    const auto limit = static_cast<size_t>(v.optional_int("limit", 1, 100).value_or(10));
    std::vector<std::string> terms;
    if (query) {
      terms = query_terms(*query);
      if (terms.empty()) v.fail("query", "must contain at least one word");
    }
    if (!query && !embedding && v.ok()) v.fail("query", "a search needs a query, an embedding or both");
    v.check();
    const std::string now = now_rfc3339();
    // Fusion ranks deeper lists than it returns, so a memory found by both ways can climb.
    const size_t depth = (query && embedding) ? std::max<size_t>(limit * 3, 30) : limit;
    auto found = co_await m->db->read([&](db::Session& s) {
      Scored text, vec;
      if (query)
        text = text_search(s, m->terms, m->common_word_rows, user_id, terms, f, now,
                           static_cast<int64_t>(depth));
      if (embedding) vec = vector_search(s, m->index, user_id, *embedding, f, now, depth);
      if (query && embedding) return fuse(text, vec, limit);
      return query ? text : vec;
    });
    json::array items;
    for (const auto& [row, score] : found)
      items.push_back(json::object{{"memory", memory_json(row)}, {"score", score}});
    co_return Response::json(200, json::object{{"items", std::move(items)}});
  });

  r.add(Method::Get, "/v1/memories/{id}", Access::user(), [m](Request& req) -> Awaitable {
    const std::string& user_id = module::caller(req).user_id;
    const std::string& id = req.param("id");
    if (!is_uuid(id)) throw Error::not_found("no such memory");
    const std::string now = now_rfc3339();
    std::string sql =
        std::string("SELECT ") + kColumns + " FROM memories m WHERE m.id = $1 AND m.user_id = $2";
    std::vector<db::Value> params{id, user_id};
    add_not_expired(now, sql, params);
    const db::Result rows = co_await m->db->query_read(sql, params);
    if (rows.empty()) throw Error::not_found("no such memory");
    co_return memory_response(200, rows.rows[0]);
  });

  r.add(Method::Patch, "/v1/memories/{id}", Access::user(), [m](Request& req) -> Awaitable {
    const std::string& user_id = module::caller(req).user_id;
    const std::string& id = req.param("id");
    if (!is_uuid(id)) throw Error::not_found("no such memory");
    const auto body = http::parse_json_object(req);
    http::Validator v(body);
    Change c;
    if (body.contains("namespace"))
      v.fail("namespace", "cannot be changed; create the memory in the other namespace");
    c.content = read_content(v, body, false);
    if (body.contains("content") && body.at("content").is_null()) v.fail("content", "cannot be null");
    c.metadata = read_metadata(v, body);
    c.tags = read_tags(v, body);
    if (auto e = read_embedding(v, body)) {
      c.set_embedding = true;
      c.embedding = std::move(*e);
    }
    if (auto t = read_ttl(v, body)) {
      c.set_expiry = true;
      c.expires_at = std::move(*t);
    }
    v.check();
    const std::string if_match(req.header("If-Match"));
    const std::string now = now_rfc3339();
    const std::string tp(req.trace.traceparent());
    auto row = co_await m->db->write([&](db::Session& s) {
      return update_memory(s, user_id, id, c, if_match, now, tp, m->versions_kept);
    });
    co_return memory_response(200, row);
  });

  r.add(Method::Delete, "/v1/memories/{id}", Access::user(), [m](Request& req) -> Awaitable {
    const std::string& user_id = module::caller(req).user_id;
    const std::string& id = req.param("id");
    if (!is_uuid(id)) throw Error::not_found("no such memory");
    const std::string now = now_rfc3339();
    const std::string tp(req.trace.traceparent());
    auto gone = co_await m->db->write([&](db::Session& s) { return delete_memory(s, user_id, id, now, tp); });
    if (!gone) throw Error::not_found("no such memory");
    if (gone->second) m->index.remove(user_id, gone->first, id);
    co_return Response::no_content();
  });

  r.add(Method::Get, "/v1/memories/{id}/history", Access::user(), [m](Request& req) -> Awaitable {
    const std::string& user_id = module::caller(req).user_id;
    const std::string& id = req.param("id");
    if (!is_uuid(id)) throw Error::not_found("no such memory");
    const http::Page page = http::parse_page(req);
    std::optional<int64_t> before;
    if (page.after) {
      int64_t n = 0;
      auto [end, ec] = std::from_chars(page.after->data(), page.after->data() + page.after->size(), n);
      if (ec != std::errc() || end != page.after->data() + page.after->size() || n < 1)
        throw Error::bad_request("the cursor is not one this server issued");
      before = n;
    }
    const std::string now = now_rfc3339();
    auto rows = co_await m->db->read([&](db::Session& s) -> std::optional<db::Result> {
      std::string sql = "SELECT 1 FROM memories m WHERE m.id = $1 AND m.user_id = $2";
      std::vector<db::Value> params{id, user_id};
      add_not_expired(now, sql, params);
      if (s.query(sql, params).empty()) return std::nullopt;
      std::vector<db::Value> hp{id, int64_t{page.limit}, before.value_or(INT64_MAX)};
      return s.query(
          "SELECT v.memory_id, v.namespace, v.content, v.metadata, v.tags, v.embedding_dims, v.version, "
          "m.created_at, "
          "v.updated_at, v.expires_at FROM memory_versions v JOIN memories m ON m.id = v.memory_id WHERE "
          "v.memory_id = $1 AND v.version < $3 ORDER BY v.version DESC LIMIT $2",
          hp);
    });
    if (!rows) throw Error::not_found("no such memory");
    co_return Response::json(200, http::page_of(rows->rows, page, memory_json, [](const db::Row& row) {
                               return std::to_string(row.int64(6));
                             }));
  });
}
}  // namespace

void declare(http::Router& router) { add_routes(router, nullptr); }

void install(ModuleContext& ctx) {
  auto m = std::make_shared<Memories>(vector_settings(ctx.config));
  m->db = &ctx.db;
  m->common_word_rows = settings::common_word_rows.integer(ctx.config);
  m->sweep_interval = std::chrono::milliseconds(settings::sweep_interval_ms.integer(ctx.config));
  m->versions_kept = settings::versions_kept.integer(ctx.config);
  m->versions_max_age_days = settings::versions_max_age_days.integer(ctx.config);
  net::co_spawn(ctx.io, sweep(m), net::detached);
  net::co_spawn(ctx.io, load_spaces(m), net::detached);
  std::weak_ptr<Memories> weak = m;
  ctx.extra_metrics = [weak](std::string& out) {
    auto mm = weak.lock();
    if (!mm) return;
    const auto st = mm->index.stats();
    out += "# HELP keel_memory_vectors Vectors in this process's index.\n# TYPE keel_memory_vectors gauge\n";
    out += "keel_memory_vectors " + std::to_string(st.vectors) + "\n";
    out +=
        "# HELP keel_memory_vectors_pending Vectors of large spaces not yet in their HNSW graph (searched "
        "exactly meanwhile).\n# TYPE keel_memory_vectors_pending gauge\n";
    out += "keel_memory_vectors_pending " + std::to_string(st.pending) + "\n";
    out +=
        "# HELP keel_memory_vector_spaces Vector spaces (user and namespace) in this process's index.\n"
        "# TYPE keel_memory_vector_spaces gauge\n";
    out += "keel_memory_vector_spaces " + std::to_string(st.spaces) + "\n";
  };
  add_routes(ctx.router, m);
}

}  // namespace keel::memory
