#include "keel/db/migrations.hpp"

#include <algorithm>
#include <cstdlib>

#include "keel/core/time.hpp"

namespace keel::db {

std::vector<Migration> migrations_for(Dialect dialect) {
  const std::string backend = dialect == Dialect::Sqlite ? "sqlite" : "postgres";
  std::vector<Migration> out;
  for (const auto& m : embedded_migrations()) {
    if (backend != m.backend) continue;
    out.push_back({std::atoi(m.name), m.name, m.sql});
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  return out;
}

MigrationReport migrate(Database& db) {
  const Dialect dialect = db.dialect();
  const char* create = dialect == Dialect::Sqlite
                           ? "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                             "name TEXT NOT NULL, applied_at TEXT NOT NULL)"
                           : "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                             "name text NOT NULL, applied_at timestamptz NOT NULL)";
  MigrationReport report;
  for (const auto& m : migrations_for(dialect)) {
    db.write_sync([&](Session& s) {
      // The advisory lock serializes keels that start together against one PostgreSQL.
      // A migration may rewrite a large table, and a process starting meanwhile waits for it on the lock: no
      // statement deadline for either (set first, so the lock's wait has none).
      if (dialect == Dialect::Postgres) s.query("SET LOCAL statement_timeout = 0");
      lock_for_transaction(s, LockKey::Migrations);
      s.exec_script(create);
      auto done = s.query("SELECT 1 FROM schema_migrations WHERE version = $1", {int64_t{m.version}});
      if (!done.empty()) return;
      s.exec_script(m.sql);
      s.query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
              {int64_t{m.version}, m.name, now_rfc3339()});
      report.applied.push_back(m.name);
    });
  }
  db.read_sync([&](Session& s) {
    auto r = s.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    report.version = static_cast<int>(r.rows.at(0).int64(0));
  });
  return report;
}

}  // namespace keel::db
