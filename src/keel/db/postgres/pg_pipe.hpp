#pragma once
// Reads on an I/O thread's own PostgreSQL connection, pipelined. A read through the worker pool costs two
// thread hand-offs and a round trip of its own (measured for GET /v1/auth/me: the workers' share of the CPU
// was two thirds of the server's). A pipe is one non-blocking connection in libpq's pipeline mode, owned by
// one I/O thread: each read is sent at once (prepared on first use) with its own sync, so it is its own
// transaction and a failure fails only it; the thread's reads in flight share the connection and the
// server answers them in order, reading and writing them in batches.
//
// A pipe that breaks (a server restart, a partition found by the connection's keepalives) fails nothing:
// its reads in flight are handed back to be run on the worker pool, with its retry and fail-fast rules.
#include <libpq-fe.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "keel/db/database.hpp"

namespace boost::asio::posix {
template <class Executor>
class basic_stream_descriptor;
}

namespace keel::db {

class Pipe : public std::enable_shared_from_this<Pipe> {
 public:
  // What became of a read: its result, its error, or nothing (the pipe broke: run it elsewhere).
  struct Outcome {
    std::optional<Result> result;
    std::exception_ptr error;
  };

  // Takes `conn` (connected, blocking); call start() once, on the thread that owns the pipe.
  explicit Pipe(PGconn* conn);
  ~Pipe();
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  // Runs the pipe's reader on `ex` (the owning thread's executor) until the pipe breaks or the executor's
  // context is destroyed.
  void start(const boost::asio::any_io_executor& ex);
  bool broken() const { return broken_; }
  // Only on the owning thread. Named arguments only (GCC 12 and temporaries in co_await).
  boost::asio::awaitable<Outcome> query(const std::string& sql, const std::vector<Value>& params);

 private:
  struct Pending {
    int commands = 0;          // sent before its sync (a PREPARE and the statement, or the statement)
    std::string prepared_sql;  // when a PREPARE went with it: the text, forgotten if the PREPARE fails
    std::optional<Result> result;
    std::optional<DbError> error;
    std::function<void(Outcome)> done;
  };
  boost::asio::awaitable<void> read_loop(std::shared_ptr<Pipe> self, boost::asio::any_io_executor ex);
  void send(const std::string& sql, const std::vector<Value>& params, Pending& p);
  void take_results();
  void break_pipe();

  PGconn* conn_;
  bool broken_ = false;
  std::deque<Pending> pending_;
  std::unordered_map<std::string, std::string> statements_;  // SQL -> prepared name
  uint64_t statement_serial_ = 0;
  // The reader's descriptor while it waits (in its frame), to wake it when a send could not flush.
  boost::asio::posix::basic_stream_descriptor<boost::asio::any_io_executor>* waiting_ = nullptr;
};

}  // namespace keel::db
