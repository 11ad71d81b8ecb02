#include <filesystem>

#include "keel/core/config.hpp"
#include "keel/db/database.hpp"
#include "keel/db/postgres/pg_database.hpp"
#include "keel/db/sqlite/sqlite_database.hpp"

namespace keel::db {

std::unique_ptr<Database> open_database(const Config& config) {
  if (config.is_sqlite()) {
    SqliteOptions opt;
    opt.path = config.sqlite_path();
    opt.synchronous = config.sqlite_synchronous;
    opt.mmap_mib = config.sqlite_mmap_mib;
    if (config.db_workers > 0) opt.readers = static_cast<size_t>(config.db_workers);
    std::error_code ec;
    std::filesystem::create_directories(opt.path.parent_path(), ec);
    if (ec)
      throw DbError(DbError::Kind::Unavailable,
                    "cannot create " + opt.path.parent_path().string() + ": " + ec.message());
    return open_sqlite(opt);
  }
  PostgresOptions opt;
  opt.url = config.database;
  if (config.db_workers > 0) opt.pool_size = static_cast<size_t>(config.db_workers);
  return open_postgres(opt);
}

}  // namespace keel::db
