#pragma once
// One pooled PostgreSQL connection as a db::Session: libpq in pipeline mode, named prepared statements cached
// by SQL text, BEGIN sent with the first statement and statements nobody reads deferred to the next one or
// the COMMIT. Internal to db/postgres (pg_database.cpp's pool hands them out).
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "keel/core/log.hpp"
#include "keel/db/postgres/pg_database.hpp"
#include "keel/db/postgres/pg_wire.hpp"

namespace keel::db::postgres {

class Connection final : public Session {
 public:
  explicit Connection(const PostgresOptions& opt) : opt_(opt) { connect(); }
  ~Connection() override {
    if (conn_) PQfinish(conn_);
  }

  Dialect dialect() const override { return Dialect::Postgres; }

  bool healthy() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

  void ensure_connected() {
    // A pooled connection the server closed while it sat idle (a restart, a failover, an idle timeout) is
    // found here, before a transaction starts on it: its socket has the EOF to read.
    if (conn_ && PQstatus(conn_) == CONNECTION_OK && !PQisBusy(conn_)) PQconsumeInput(conn_);
    if (healthy()) return;
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    connect();
  }

  Result query(std::string_view sql, const std::vector<Value>& params) override {
    if (commit_sent_) throw DbError(DbError::Kind::Other, "a statement after the transaction's last");
    Bound b = bind(sql, params);
    if (!begin_pending_ && deferred_.empty())
      return take(PQexecPrepared(conn_, b.name.c_str(), static_cast<int>(b.values.size()), b.values.data(),
                                 b.lengths.data(), b.formats.data(), 0));
    return pipeline(&b, false);
  }

  // Sent with the transaction's next statement or its COMMIT, in one round trip with them.
  void defer(std::string_view sql, const std::vector<Value>& params) override {
    deferred_.push_back(bind(sql, params));
  }

  void exec_script(std::string_view sql) override {
    if (begin_pending_ || !deferred_.empty()) pipeline(nullptr, false);
    take(PQexec(conn_, std::string(sql).c_str()));
  }

  // The transaction's last statement: COMMIT goes with it, in the same round trip.
  Result query_last(std::string_view sql, const std::vector<Value>& params) override {
    if (!in_write_ || commit_sent_) return query(sql, params);
    Bound b = bind(sql, params);
    commit_sent_ = true;
    return pipeline(&b, true);
  }

  // Forgets what a failed transaction left behind (a BEGIN never sent, statements never sent).
  void reset_transaction() {
    begin_pending_ = false;
    in_write_ = false;
    commit_sent_ = false;
    deferred_.clear();
  }

  // A transaction whose BEGIN goes out with its first statement instead of a round trip of its own.
  void begin() {
    deferred_.clear();
    begin_pending_ = true;
    in_write_ = true;
    commit_sent_ = false;
  }
  // COMMIT, with whatever is deferred; nothing at all when the transaction never sent a statement, or
  // committed with its last statement.
  void commit() {
    if (commit_sent_ || (begin_pending_ && deferred_.empty())) {
      begin_pending_ = false;
      return;
    }
    commit_sent_ = true;
    pipeline(nullptr, true);
  }
  // Whether a COMMIT went out (its outcome may be unknown if the connection broke).
  bool commit_sent() const { return commit_sent_; }
  void rollback() {
    deferred_.clear();
    begin_pending_ = false;
    // Nothing to undo when nothing was sent, or the server ended the transaction (an implicit one, or a
    // COMMIT that ran); a COMMIT skipped after a failed statement leaves it open (and aborted).
    const PGTransactionStatusType st = PQtransactionStatus(conn_);
    if (st == PQTRANS_INTRANS || st == PQTRANS_INERROR) take(PQexec(conn_, "ROLLBACK"));
  }

 private:
  Bound bind(std::string_view sql, const std::vector<Value>& params) {
    Bound b = bind_params(params);
    b.name = prepared(sql, static_cast<int>(params.size()));
    return b;
  }

  // One round trip in libpq's pipeline mode: a pending BEGIN, the deferred statements, then `last` (its
  // result is returned) and/or COMMIT. Statements after a failed one are skipped by the server; the first
  // failure is thrown once every result has been read. A whole transaction in one pipeline needs neither
  // BEGIN nor COMMIT: the server runs a pipeline's statements up to its sync as one implicit transaction,
  // committed at the sync or rolled back on the first failure (two statements fewer to run a group).
  Result pipeline(const Bound* last, bool commit) {
    const bool implicit = commit && begin_pending_;
    if (PQenterPipelineMode(conn_) != 1) throw DbError(DbError::Kind::Unavailable, "PostgreSQL: pipeline");
    struct Exit {
      PGconn* c;
      ~Exit() { PQexitPipelineMode(c); }
    } exit{conn_};
    size_t sent = 0;
    bool ok = true;
    const auto send = [&](const Bound& b) {
      ok = ok && PQsendQueryPrepared(conn_, b.name.c_str(), static_cast<int>(b.values.size()),
                                     b.values.data(), b.lengths.data(), b.formats.data(), 0) == 1;
      ++sent;
    };
    const auto send_simple = [&](const char* sql) {
      ok = ok && PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
      ++sent;
    };
    if (begin_pending_ && !implicit) send_simple("BEGIN");
    begin_pending_ = false;
    for (const auto& d : deferred_) send(d);
    deferred_.clear();
    const size_t last_index = last ? sent : SIZE_MAX;
    if (last) send(*last);
    if (commit && !implicit) send_simple("COMMIT");
    ok = ok && PQpipelineSync(conn_) == 1;
    if (!ok) take(nullptr);  // the connection broke while sending: Unavailable
    // Every statement's result, then the sync's; the result of `last` is kept, the first error thrown.
    std::optional<DbError> failure;
    Result out;
    for (size_t i = 0; i < sent; ++i) {
      PGresult* res = PQgetResult(conn_);
      if (!res) {
        if (!failure) failure = DbError(DbError::Kind::Unavailable, "PostgreSQL: the connection broke");
        break;
      }
      const bool aborted = PQresultStatus(res) == PGRES_PIPELINE_ABORTED;
      try {
        if (aborted) {
          PQclear(res);
        } else if (i == last_index) {
          out = take(res);
        } else {
          take(res);
        }
      } catch (const DbError& e) {
        if (!failure) failure = e;
      }
      while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);  // the NULL that ends each result
    }
    for (;;) {  // up to the sync
      PGresult* res = PQgetResult(conn_);
      if (!res) break;
      const bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
      PQclear(res);
      if (sync) break;
    }
    if (failure) throw *failure;
    return out;
  }

 private:
  // The named statement for `sql` on this connection, prepared on first use: PostgreSQL then parses and
  // plans it once per connection instead of on every call (raw pgbench: ~2,500 reads/s unprepared against
  // ~6,000 prepared on this machine). Statements built with a varying number of placeholders make many
  // texts, so the cache is bounded: past kMaxStatements it starts again from none.
  const std::string& prepared(std::string_view sql, int params) {
    constexpr size_t kMaxStatements = 512;
    if (auto it = statements_.find(sql); it != statements_.end()) return it->second;
    // Not while statements wait to be sent: their names would go with the rest.
    if (statements_.size() >= kMaxStatements && deferred_.empty()) {
      take(PQexec(conn_, "DEALLOCATE ALL"));
      statements_.clear();
    }
    std::string name = "keel_" + std::to_string(++statement_serial_);
    std::string text(sql);
    take(PQprepare(conn_, name.c_str(), text.c_str(), params, nullptr));
    return statements_.emplace(std::move(text), std::move(name)).first->second;
  }

  void connect() {
    statements_.clear();  // a new server session has none of the old one's
    reset_transaction();
    conn_ = connect_postgres(opt_);
  }

  Result take(PGresult* res) { return to_result(res, conn_); }

  PostgresOptions opt_;
  PGconn* conn_ = nullptr;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, std::string, Hash, std::equal_to<>> statements_;  // SQL -> name
  uint64_t statement_serial_ = 0;
  bool begin_pending_ = false;  // in a transaction whose BEGIN is not sent yet
  bool in_write_ = false;       // in a write transaction (begin() called)
  bool commit_sent_ = false;    // its COMMIT (or its implicit end) has gone out
  std::vector<Bound> deferred_;
};

}  // namespace keel::db::postgres
