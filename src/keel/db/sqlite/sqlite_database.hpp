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
  // The page caches of all connections together: the writer keeps 2 MiB of it (or half, when smaller) and
  // the readers kept open (readers + 2) share the rest; a burst may open more for a while, each with a
  // reader's share. Pages beyond it are read again through the operating system's cache. SQLite's default, 2
  // MiB a connection, let memory grow with the database for the first minutes of a process's life.
  int64_t cache_mib = 8;
  int busy_timeout_ms = 5000;
};

// WAL mode, foreign keys on, one writer connection (serialized) and a pool of reader connections.
std::unique_ptr<Database> open_sqlite(const SqliteOptions& options);

}  // namespace keel::db
