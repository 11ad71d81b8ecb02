#include "keel/memory/search.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace keel::memory {

namespace {
constexpr int64_t kCatchUpBatch = 5000;
// A filtered vector search scores the filter's matches exactly when there are at most this many.
constexpr size_t kExactFilterLimit = 50000;
// Reciprocal rank fusion's constant (Cormack et al.): a document's fused score is sum 1 / (k + rank).
constexpr double kRrfK = 60;
// A scored query selects the memory (kColumns) and then its score.
constexpr size_t kScore = kMemory.size();
}  // namespace

std::vector<int64_t> TermStats::document_frequencies(db::Session& s, const std::vector<std::string>& terms,
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
    out[i] = s.query("SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH $1 LIMIT $2)",
                     {"content : \"" + terms[i] + "\"", cap + 1})
                 .rows.at(0)
                 .int64(0);
    std::lock_guard lock(mu_);
    if (cache_.size() > 100000) cache_.clear();
    cache_[terms[i]] = {out[i], now};
  }
  return out;
}

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

static std::string hex_lower(std::string_view s) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// SQLite's full text: FTS5, ranked by keel_bm25. Rare words decide which memories qualify; common ones would
// add little (their IDF is small) and are left out. The best matches of anyone's are ranked inside the index
// and only those rows are joined to the table (which keeps the user's and applies the filters), asking for
// more when too few survive: that is bounded, the words being rare. A query of only common words ranks the
// `common` newest matches among the user's memories, found through the scope column's tokens (see
// 0005_memory.sql; phrase 0, which does not score).
static Scored sqlite_text_search(db::Session& s, TermStats& stats, int64_t common, const std::string& user_id,
                                 const std::vector<std::string>& terms, const Filters& f,
                                 const std::string& now, int64_t limit) {
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
    std::string sql = "SELECT " + kColumns +
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
        for (auto& row : r.rows) out.emplace_back(row, row.real(kScore));
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
      "SELECT " + kColumns +
      ", ts_rank(m.fts, q.q) AS score FROM memories m, websearch_to_tsquery('english', $1) AS q(q) WHERE "
      "m.user_id = $2 AND m.fts @@ q.q";
  add_not_expired(now, sql, params);
  add_filters(s.dialect(), f, sql, params);
  params.emplace_back(limit);
  sql += " ORDER BY score DESC, m.id DESC LIMIT $" + std::to_string(params.size());
  auto r = s.query(sql, params);
  Scored out;
  for (auto& row : r.rows) out.emplace_back(row, row.real(kScore));
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
static Scored verify_hits(db::Session& s, const std::string& user_id, const std::vector<VectorHit>& hits,
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
  for (size_t i = 0; i < r.rows.size(); ++i) at.emplace(r.rows[i].text(kMemory["id"]), i);
  for (const auto& h : hits) {
    auto it = at.find(h.id);
    if (it != at.end()) out.emplace_back(r.rows[it->second], h.score);
  }
  return out;
}

static Scored vector_search_space(db::Session& s, VectorIndex& index, const std::string& user_id,
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
      for (const auto& [row, score] : rows) alive.insert(row.text(kMemory["id"]));
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
      auto [it, inserted] = at.emplace(row.text(kMemory["id"]), out.size());
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

}  // namespace keel::memory
