#pragma once
// What the memory module's routes and background work share: the database, this process's vector index, the
// full-text statistics cache and the module's settings as read at start.
#include <chrono>
#include <cstdint>

#include "keel/db/database.hpp"
#include "keel/memory/search.hpp"
#include "keel/memory/vector_index.hpp"
#include "keel/module/outbox.hpp"

namespace keel::memory {

struct Memories {
  explicit Memories(VectorSettings vs) : index(vs) {}
  db::Database* db = nullptr;
  const module::Outbox* outbox = nullptr;
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

}  // namespace keel::memory
