#pragma once
// keel's own FTS5 ranking function, registered on every SQLite connection:
//
//   keel_bm25(fts_table, df_0, df_1, ...)
//
// Okapi BM25 (k1 = 1.2, b = 0.75) over the first column, like FTS5's bm25() but with the document
// frequency of each phrase given by the caller (a negative df: the phrase does not score). FTS5's bm25()
// counts every phrase's matching rows on each query to get its IDF, which for a word in most rows costs as
// much as the whole search; the memory module keeps those counts cached instead. Higher is better.
struct sqlite3;

namespace keel::db {

void register_fts_functions(sqlite3* db);

}  // namespace keel::db
