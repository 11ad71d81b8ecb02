#pragma once
// The [memory] table (KEEL_MEMORY_* in the environment): every setting the memory module reads, declared
// once.
#include "keel/core/settings.hpp"

namespace keel::memory::settings {

using Kind = ModuleSetting::Kind;
inline constexpr ModuleSetting sweep_interval_ms{
    "memory.sweep_interval_ms",
    Kind::Integer,
    "30000",
    10,
    86400000,
    "how often expired memories are deleted, in milliseconds (reads hide them at once)"};
inline constexpr ModuleSetting versions_kept{"memory.versions_kept",
                                             Kind::Integer,
                                             "20",
                                             0,
                                             100000,
                                             "a memory's history keeps its newest past versions (0: none)"};
inline constexpr ModuleSetting versions_max_age_days{
    "memory.versions_max_age_days",
    Kind::Integer,
    "90",
    0,
    36500,
    "and none that stopped being current longer ago (0: no age limit)"};
inline constexpr ModuleSetting common_word_rows{
    "memory.common_word_rows",
    Kind::Integer,
    "500",
    1,
    1e7,
    "SQLite full text: a word in more of a user's memories than this is common"};
inline constexpr ModuleSetting hnsw_threshold{
    "memory.hnsw_threshold",
    Kind::Integer,
    "2048",
    1,
    1e9,
    "vectors in one user's namespace before it gets an HNSW graph (below: exact search)"};
inline constexpr ModuleSetting hnsw_m{"memory.hnsw_m", Kind::Integer, "16", 4, 64, "HNSW graph degree"};
inline constexpr ModuleSetting hnsw_ef_construction{
    "memory.hnsw_ef_construction", Kind::Integer, "128", 16, 1000, "HNSW candidates while building"};
inline constexpr ModuleSetting hnsw_ef_search{"memory.hnsw_ef_search",          Kind::Integer, "96", 10, 2000,
                                              "HNSW candidates while searching"};

inline const SettingTable& table() {
  static const SettingTable t{"memory",
                              {&sweep_interval_ms, &versions_kept, &versions_max_age_days, &common_word_rows,
                               &hnsw_threshold, &hnsw_m, &hnsw_ef_construction, &hnsw_ef_search}};
  return t;
}

}  // namespace keel::memory::settings
