#pragma once
#include <filesystem>
#include <memory>
#include <string>

#include "keel/db/database.hpp"

namespace keel::db {

struct SqliteOptions {
  std::filesystem::path path;
  std::string synchronous = "NORMAL";
  int64_t mmap_mib = 0;
  size_t readers = 4;
  int busy_timeout_ms = 5000;
};

// WAL mode, foreign keys on, one writer connection (serialized) and a pool of reader connections.
std::unique_ptr<Database> open_sqlite(const SqliteOptions& options);

}  // namespace keel::db
