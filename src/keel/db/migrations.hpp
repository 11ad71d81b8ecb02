#pragma once
// Versioned migrations: src/keel/db/migrations/<backend>/NNNN_name.sql, compiled in, applied in order and
// recorded in schema_migrations. A landed migration is never edited; a change is a new file.
#include <string>
#include <vector>

#include "keel/db/database.hpp"

namespace keel::db {

struct EmbeddedMigration {
  const char* backend;  // "sqlite" or "postgres"
  const char* name;     // "0001_init"
  const char* sql;
};
const std::vector<EmbeddedMigration>& embedded_migrations();

struct Migration {
  int version;
  std::string name;
  std::string sql;
};
std::vector<Migration> migrations_for(Dialect dialect);

struct MigrationReport {
  std::vector<std::string> applied;  // names applied by this call
  int version = 0;                   // the schema version afterwards
};

// Applies the pending migrations, each in its own transaction. Safe to run from several processes at
// once: PostgreSQL takes an advisory lock, SQLite serializes writers.
MigrationReport migrate(Database& db);

}  // namespace keel::db
