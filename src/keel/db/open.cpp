#include <filesystem>

#include "keel/core/config.hpp"
#include "keel/db/database.hpp"
#include "keel/db/postgres/pg_database.hpp"
#include "keel/db/settings.hpp"
#include "keel/db/sqlite/sqlite_database.hpp"

namespace keel::db {

namespace {
std::chrono::milliseconds queue_timeout(const Config& config) {
  return std::chrono::milliseconds(settings::queue_timeout_ms.integer(config));
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
  const auto read = [&](const ModuleSetting& s, int& out) { out = static_cast<int>(s.integer(config)); };
  read(settings::connect_timeout_s, opt.connect_timeout_s);
  read(settings::statement_timeout_ms, opt.statement_timeout_ms);
  read(settings::tcp_user_timeout_ms, opt.tcp_user_timeout_ms);
  read(settings::keepalive_idle_s, opt.keepalive_idle_s);
  read(settings::keepalive_interval_s, opt.keepalive_interval_s);
  read(settings::keepalive_count, opt.keepalive_count);
  read(settings::idle_in_transaction_ms, opt.idle_in_transaction_ms);
  read(settings::retry_after_ms, opt.retry_after_ms);
  auto db = open_postgres(opt);
  db->set_queue_timeout(queue_timeout(config));
  return db;
}

}  // namespace keel::db
