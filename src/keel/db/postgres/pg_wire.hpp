#pragma once
// What the PostgreSQL backend's two ways of talking to the server share (pg_database.cpp: blocking
// connections on the database's workers; pg_pipe.cpp: a pipelined connection on an I/O thread): parameters as
// libpq takes them, results as Row and Result hold them, errors as DbError kinds, and the connection's
// settings and deadlines.
#include <libpq-fe.h>

#include <string>
#include <vector>

#include "keel/db/database.hpp"
#include "keel/db/postgres/pg_database.hpp"

namespace keel::db {

// A statement's parameters as libpq takes them, owning their text (and bytes, sent as binary), with the
// name of its prepared statement (set by whoever prepares it).
struct Bound {
  std::string name;
  std::vector<std::string> storage;
  std::vector<const char*> values;
  std::vector<int> lengths, formats;
};
Bound bind_params(const std::vector<Value>& params);

// The rows of a command's result; throws DbError (its kind from the SQLSTATE, Unavailable when the
// connection broke) for a failed one. Clears `res`.
Result to_result(PGresult* res, PGconn* conn);

// A blocking connect with keel's deadlines and session settings; throws DbError(Unavailable).
// `application_name` shows in pg_stat_activity: "keel" for pooled connections, "keel-pipe" for pipes.
PGconn* connect_postgres(const PostgresOptions& opt, const char* application_name = "keel");

}  // namespace keel::db
