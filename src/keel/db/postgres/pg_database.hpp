#pragma once
#include <memory>
#include <string>

#include "keel/db/database.hpp"

namespace keel::db {

// Every call has a deadline ([database] in the config; README "Database deadlines"): a database that stops
// answering (a crash, a partition that silently drops packets) fails calls within about
// max(tcp_user_timeout_ms, connect_timeout_s) instead of hanging them.
struct PostgresOptions {
  std::string url;  // postgresql://user@host:port/dbname?...
  size_t pool_size = 8;
  int connect_timeout_s = 2;           // libpq's floor is 2 s
  int statement_timeout_ms = 5000;     // server side: a statement running longer is cancelled (503)
  int tcp_user_timeout_ms = 3000;      // sent data unacknowledged this long: the connection is dead
  int keepalive_idle_s = 1;            // waiting on an answer: probe the peer after 1 s of silence,
  int keepalive_interval_s = 1;        // then every second,
  int keepalive_count = 3;             // and give up after 3 unanswered probes
  int idle_in_transaction_ms = 10000;  // server side: a client gone mid-transaction frees its locks
  int retry_after_ms = 250;            // once unreachable, calls fail at once; one probe per this period
};

// libpq over a bounded connection pool. A broken connection leaves the pool; once the server is found
// unreachable, calls fail fast (503) while one call at a time probes it, so service resumes within
// retry_after_ms (plus a connect) of the link returning, without a restart.
std::unique_ptr<Database> open_postgres(const PostgresOptions& options);

}  // namespace keel::db
