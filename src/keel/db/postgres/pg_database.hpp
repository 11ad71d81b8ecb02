#pragma once
#include <memory>
#include <string>

#include "keel/db/database.hpp"

namespace keel::db {

struct PostgresOptions {
  std::string url;  // postgresql://user@host:port/dbname?...
  size_t pool_size = 8;
  int connect_timeout_s = 5;
};

// libpq over a bounded connection pool; a broken connection is reset on its next use, so the service
// recovers by itself after a database outage.
std::unique_ptr<Database> open_postgres(const PostgresOptions& options);

// The URL without its password, for logs.
std::string redact_url(const std::string& url);

}  // namespace keel::db
