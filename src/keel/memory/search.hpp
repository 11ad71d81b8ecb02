#pragma once
// The memory module's search engine: full text (BM25 over SQLite's FTS5 with cached document frequencies,
// ts_rank on PostgreSQL), vectors (this process's index, caught up from the database's change log and checked
// against the rows), and hybrid (reciprocal rank fusion). Routes call these inside a read transaction.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "keel/db/database.hpp"
#include "keel/memory/store.hpp"
#include "keel/memory/vector_index.hpp"

namespace keel::memory {

// Document frequencies of search words across the full-text index, counted up to a cap and cached for five
// minutes: keel_bm25 takes them as arguments, so a query does not recount every row of a common word to rank.
class TermStats {
 public:
  // Each term's count, or cap + 1 for "more than cap".
  std::vector<int64_t> document_frequencies(db::Session& s, const std::vector<std::string>& terms,
                                            int64_t cap);

 private:
  static constexpr auto kTtl = std::chrono::seconds(300);
  std::mutex mu_;
  std::unordered_map<std::string, std::pair<int64_t, std::chrono::steady_clock::time_point>> cache_;
};

// Ranked rows (memory_columns' order) with their scores, best first.
using Scored = std::vector<std::pair<db::Row, double>>;

// Words of the query: runs of letters and digits (any non-ASCII byte counts as a letter), at most 32.
std::vector<std::string> query_terms(const std::string& q);

// Full text: BM25 on SQLite, ts_rank on PostgreSQL; any of the words matches, better matches first. `common`:
// a word in more of the user's memories than this is common (settings.hpp, common_word_rows).
Scored text_search(db::Session& s, TermStats& stats, int64_t common, const std::string& user_id,
                   const std::vector<std::string>& terms, const Filters& f, const std::string& now,
                   int64_t limit);

// Brings this process's copy of the space up to the database's vector_seq.
void catch_up(db::Session& s, VectorIndex& index, const std::string& user_id, const std::string& ns,
              int dims);

// Cosine similarity to `q` in the user's spaces of its dimension (or the filter's namespace), the k best.
Scored vector_search(db::Session& s, VectorIndex& index, const std::string& user_id,
                     const std::vector<float>& q, const Filters& f, const std::string& now, size_t k);

// Reciprocal rank fusion of two rankings, the k best.
Scored fuse(const Scored& a, const Scored& b, size_t k);

}  // namespace keel::memory
