#include "keel/db/postgres/pg_wire.hpp"

#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <variant>

namespace keel::db {

namespace {

constexpr Oid kByteaOid = 17;

// bytea arrives in text results as \x and two hex digits a byte; Row holds raw bytes on both backends.
std::string unhex_bytea(const char* p, int len) {
  auto nibble = [](char c) -> int {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c - 'A' + 10;
  };
  if (len < 2 || p[0] != '\\' || p[1] != 'x') return std::string(p, static_cast<size_t>(len));
  std::string out(static_cast<size_t>(len - 2) / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = static_cast<char>(nibble(p[2 + 2 * i]) << 4 | nibble(p[3 + 2 * i]));
  return out;
}

DbError::Kind kind_of_sqlstate(const char* state) {
  if (!state) return DbError::Kind::Unavailable;
  if (std::strcmp(state, "23505") == 0) return DbError::Kind::UniqueViolation;
  if (std::strcmp(state, "23503") == 0) return DbError::Kind::ForeignKeyViolation;
  // Connection failures, a server shutting down or starting, insufficient resources (53100: disk full) and
  // a server that refuses writes (25006: read-only, e.g. a standby): the database cannot serve, 503.
  if (std::strncmp(state, "08", 2) == 0 || std::strcmp(state, "57P01") == 0 ||
      std::strcmp(state, "57P03") == 0 || std::strncmp(state, "53", 2) == 0 ||
      std::strcmp(state, "25006") == 0)
    return DbError::Kind::Unavailable;
  // Serialization failures, deadlocks, lock timeouts and statement timeouts (57014): try again later.
  if (std::strcmp(state, "40001") == 0 || std::strcmp(state, "40P01") == 0 ||
      std::strcmp(state, "55P03") == 0 || std::strcmp(state, "57014") == 0)
    return DbError::Kind::Busy;
  return DbError::Kind::Other;
}

}  // namespace

Bound bind_params(const std::vector<Value>& params) {
  Bound b;
  b.storage.resize(params.size());
  b.values.assign(params.size(), nullptr);
  b.lengths.assign(params.size(), 0);
  b.formats.assign(params.size(), 0);
  for (size_t i = 0; i < params.size(); ++i) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, std::nullptr_t>) {
            return;
          } else if constexpr (std::is_same_v<T, int64_t>) {
            b.storage[i] = std::to_string(x);
          } else if constexpr (std::is_same_v<T, double>) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.17g", x);
            b.storage[i] = buf;
          } else if constexpr (std::is_same_v<T, bool>) {
            b.storage[i] = x ? "true" : "false";
          } else if constexpr (std::is_same_v<T, Blob>) {
            b.storage[i] = x.bytes;  // sent as binary: bytea needs no escaping
            b.lengths[i] = static_cast<int>(x.bytes.size());
            b.formats[i] = 1;
          } else {
            b.storage[i] = x;
          }
        },
        params[i]);
    if (!std::holds_alternative<std::nullptr_t>(params[i])) b.values[i] = b.storage[i].data();
  }
  return b;
}

Result to_result(PGresult* res, PGconn* conn) {
  struct Clear {
    PGresult* r;
    ~Clear() { PQclear(r); }
  } clear{res};
  const ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    std::string msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    DbError::Kind kind = kind_of_sqlstate(state);
    if (PQstatus(conn) != CONNECTION_OK) kind = DbError::Kind::Unavailable;
    throw DbError(kind, "PostgreSQL: " + msg);
  }
  Result result;
  const int cols = PQnfields(res);
  auto names = std::make_shared<std::vector<std::string>>();
  for (int c = 0; c < cols; ++c) names->emplace_back(PQfname(res, c));
  result.columns = names;
  const int rows = PQntuples(res);
  result.rows.reserve(rows);
  for (int r = 0; r < rows; ++r) {
    std::vector<std::optional<std::string>> values;
    values.reserve(cols);
    for (int c = 0; c < cols; ++c) {
      if (PQgetisnull(res, r, c))
        values.emplace_back(std::nullopt);
      else if (PQftype(res, c) == kByteaOid)
        values.emplace_back(unhex_bytea(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
      else
        values.emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
    }
    result.rows.emplace_back(names, std::move(values));
  }
  const char* affected = PQcmdTuples(res);
  result.affected = (affected && *affected) ? std::atoll(affected) : rows;
  return result;
}

PGconn* connect_postgres(const PostgresOptions& opt, const char* application_name) {
  // The URL's own settings come first (expand_dbname); the deadlines are added after them.
  const std::string connect_timeout = std::to_string(opt.connect_timeout_s);
  const std::string user_timeout = std::to_string(opt.tcp_user_timeout_ms);
  const std::string idle = std::to_string(opt.keepalive_idle_s);
  const std::string interval = std::to_string(opt.keepalive_interval_s);
  const std::string count = std::to_string(opt.keepalive_count);
  // The server's side of the same: a statement deadline, and a client that vanished mid-transaction (a
  // partition) loses its locks instead of holding every other writer of the fleet behind them.
  const std::string options =
      "-c statement_timeout=" + std::to_string(opt.statement_timeout_ms) +
      " -c idle_in_transaction_session_timeout=" + std::to_string(opt.idle_in_transaction_ms) +
      " -c tcp_user_timeout=" + user_timeout + " -c tcp_keepalives_idle=" + idle +
      " -c tcp_keepalives_interval=" + interval + " -c tcp_keepalives_count=" + count;
  const char* keys[] = {"dbname",           "connect_timeout",
                        "application_name", "keepalives",
                        "keepalives_idle",  "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout",
                        "options",          nullptr};
  const char* values[] = {
      opt.url.c_str(), connect_timeout.c_str(), application_name, "1",    idle.c_str(), interval.c_str(),
      count.c_str(),   user_timeout.c_str(),    options.c_str(),  nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, 1);
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    PQfinish(conn);
    throw DbError(DbError::Kind::Unavailable, "PostgreSQL: " + msg);
  }
  // Notices (e.g. "text-search query doesn't contain lexemes") would go to stderr, outside the JSON log.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  try {
    to_result(PQexec(conn, "SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'"), conn);
  } catch (...) {
    PQfinish(conn);
    throw;
  }
  return conn;
}

}  // namespace keel::db
