#include "keel/db/sqlite/fts_rank.hpp"

#include <sqlite3.h>

#include <cmath>
#include <vector>

namespace keel::db {

namespace {

constexpr double kK1 = 1.2;
constexpr double kB = 0.75;

// Per-statement constants, computed on the first row.
struct Corpus {
  double avgdl = 1;
  std::vector<double> idf;  // per phrase; 0 for phrases that do not score
};

void keel_bm25(const Fts5ExtensionApi* api, Fts5Context* fts, sqlite3_context* ctx, int nval,
               sqlite3_value** vals) {
  auto* corpus = static_cast<Corpus*>(api->xGetAuxdata(fts, 0));
  const int phrases = api->xPhraseCount(fts);
  if (!corpus) {
    sqlite3_int64 rows = 0, tokens = 0;
    if (api->xRowCount(fts, &rows) != SQLITE_OK || api->xColumnTotalSize(fts, 0, &tokens) != SQLITE_OK) {
      sqlite3_result_error(ctx, "keel_bm25: cannot read the index's totals", -1);
      return;
    }
    corpus = new Corpus;
    corpus->avgdl = rows > 0 && tokens > 0 ? static_cast<double>(tokens) / static_cast<double>(rows) : 1.0;
    corpus->idf.assign(static_cast<size_t>(phrases), 0.0);
    for (int i = 0; i < phrases && i < nval; ++i) {
      const double df = sqlite3_value_double(vals[i]);
      if (df < 0) continue;
      const double n = static_cast<double>(rows);
      // Lucene's form, never negative: a word in most rows still counts a little.
      corpus->idf[static_cast<size_t>(i)] = std::log(1.0 + (n - df + 0.5) / (df + 0.5));
    }
    if (api->xSetAuxdata(fts, corpus, [](void* p) { delete static_cast<Corpus*>(p); }) != SQLITE_OK) {
      sqlite3_result_error_nomem(ctx);
      return;
    }
  }
  int count = 0;
  if (api->xInstCount(fts, &count) != SQLITE_OK) {
    sqlite3_result_error(ctx, "keel_bm25: cannot read the row's matches", -1);
    return;
  }
  thread_local std::vector<int> tf;
  tf.assign(static_cast<size_t>(phrases), 0);
  for (int i = 0; i < count; ++i) {
    int phrase = 0, column = 0, offset = 0;
    if (api->xInst(fts, i, &phrase, &column, &offset) == SQLITE_OK && column == 0 && phrase >= 0 &&
        phrase < phrases)
      ++tf[static_cast<size_t>(phrase)];
  }
  int dl = 0;
  api->xColumnSize(fts, 0, &dl);
  const double norm = kK1 * (1 - kB + kB * static_cast<double>(dl) / corpus->avgdl);
  double score = 0;
  for (int i = 0; i < phrases; ++i) {
    const double f = tf[static_cast<size_t>(i)];
    if (f > 0) score += corpus->idf[static_cast<size_t>(i)] * f * (kK1 + 1) / (f + norm);
  }
  sqlite3_result_double(ctx, score);
}

fts5_api* fts5_api_of(sqlite3* db) {
  fts5_api* api = nullptr;
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT fts5(?1)", -1, &stmt, nullptr) == SQLITE_OK) {
    sqlite3_bind_pointer(stmt, 1, static_cast<void*>(&api), "fts5_api_ptr", nullptr);
    sqlite3_step(stmt);
  }
  sqlite3_finalize(stmt);
  return api;
}

}  // namespace

void register_fts_functions(sqlite3* db) {
  fts5_api* api = fts5_api_of(db);
  if (api && api->iVersion >= 2) api->xCreateFunction(api, "keel_bm25", nullptr, keel_bm25, nullptr);
}

}  // namespace keel::db
