#include <filesystem>

#include "keel/core/config.hpp"
#include "keel/db/database.hpp"
#include "keel/db/postgres/pg_database.hpp"
#include "keel/db/sqlite/sqlite_database.hpp"

namespace keel::db {

namespace {
std::chrono::milliseconds queue_timeout(const Config& config) {
  return std::chrono::milliseconds(
      static_cast<int64_t>(module_number(config, "database.queue_timeout_ms", 5000, 10, 600000)));
}
}  // namespace

std::unique_ptr<Database> open_database(const Config& config) {
  if (config.is_sqlite()) {
    SqliteOptions opt;
    opt.path = config.sqlite_path();
    opt.synchronous = config.sqlite_synchronous;
    opt.mmap_mib = config.sqlite_mmap_mib;
    opt.cache_mib = config.sqlite_cache_mib;
    if (config.db_workers > 0) opt.readers = static_cast<size_t>(config.db_workers);
    std::error_code ec;
    std::filesystem::create_directories(opt.path.parent_path(), ec);
    if (ec)
      throw DbError(DbError::Kind::Unavailable,
                    "cannot create " + opt.path.parent_path().string() + ": " + ec.message());
    auto db = open_sqlite(opt);
    db->set_queue_timeout(queue_timeout(config));
    return db;
  }
  PostgresOptions opt;
  opt.url = config.database;
  if (config.db_workers > 0) opt.pool_size = static_cast<size_t>(config.db_workers);
  const auto setting = [&](const char* key, int& out, double lo, double hi) {
    out = static_cast<int>(module_number(config, std::string("database.") + key, out, lo, hi));
  };
  setting("connect_timeout_s", opt.connect_timeout_s, 2, 600);
  setting("statement_timeout_ms", opt.statement_timeout_ms, 0, 86400000);
  setting("tcp_user_timeout_ms", opt.tcp_user_timeout_ms, 0, 3600000);
  setting("keepalive_idle_s", opt.keepalive_idle_s, 1, 7200);
  setting("keepalive_interval_s", opt.keepalive_interval_s, 1, 600);
  setting("keepalive_count", opt.keepalive_count, 1, 100);
  setting("idle_in_transaction_ms", opt.idle_in_transaction_ms, 0, 86400000);
  setting("retry_after_ms", opt.retry_after_ms, 10, 60000);
  auto db = open_postgres(opt);
  db->set_queue_timeout(queue_timeout(config));
  return db;
}

}  // namespace keel::db
