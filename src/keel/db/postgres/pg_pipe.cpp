#include "keel/db/postgres/pg_pipe.hpp"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "keel/db/postgres/pg_wire.hpp"

namespace keel::db {

namespace net = boost::asio;

Pipe::Pipe(PGconn* conn) : conn_(conn) {
  PQsetnonblocking(conn_, 1);
  if (PQenterPipelineMode(conn_) != 1) broken_ = true;
}

Pipe::~Pipe() { PQfinish(conn_); }

void Pipe::start(const net::any_io_executor& ex) {
  net::co_spawn(ex, read_loop(shared_from_this(), ex), net::detached);
}

net::awaitable<Pipe::Outcome> Pipe::query(const std::string& sql, const std::vector<Value>& params) {
  if (broken_) co_return Outcome{};
  auto ex = co_await net::this_coro::executor;
  auto initiate = [this, ex, &sql, &params](auto handler) {
    auto state = std::make_shared<decltype(handler)>(std::move(handler));
    Pending p;
    // Resumed through the executor, never from inside the reader's loop.
    p.done = [ex, state](Outcome o) {
      net::post(ex, [state, o = std::move(o)]() mutable { (*state)(std::move(o)); });
    };
    send(sql, params, p);
    if (broken_) {
      p.done(Outcome{});
      return;
    }
    pending_.push_back(std::move(p));
  };
  co_return co_await net::async_initiate<decltype(net::use_awaitable), void(Outcome)>(initiate,
                                                                                      net::use_awaitable);
}

void Pipe::send(const std::string& sql, const std::vector<Value>& params, Pending& p) {
  // Prepared once per connection (statements built with a varying number of placeholders make many texts:
  // past the bound the rest go unnamed).
  constexpr size_t kMaxStatements = 512;
  Bound b = bind_params(params);
  bool ok = true;
  auto it = statements_.find(sql);
  if (it == statements_.end() && statements_.size() < kMaxStatements) {
    const std::string name = "keel_pipe_" + std::to_string(++statement_serial_);
    ok = PQsendPrepare(conn_, name.c_str(), sql.c_str(), static_cast<int>(params.size()), nullptr) == 1;
    ++p.commands;
    p.prepared_sql = sql;
    it = statements_.emplace(sql, name).first;
  }
  if (it != statements_.end())
    ok = ok && PQsendQueryPrepared(conn_, it->second.c_str(), static_cast<int>(b.values.size()),
                                   b.values.data(), b.lengths.data(), b.formats.data(), 0) == 1;
  else
    ok = ok && PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(b.values.size()), nullptr,
                                 b.values.data(), b.lengths.data(), b.formats.data(), 0) == 1;
  ++p.commands;
  ok = ok && PQpipelineSync(conn_) == 1;
  const int flushed = ok ? PQflush(conn_) : -1;
  if (flushed < 0) {
    break_pipe();
    return;
  }
  // Left unsent (a full socket buffer): the reader waits for the socket to take it.
  if (flushed == 1 && waiting_) waiting_->cancel();
}

net::awaitable<void> Pipe::read_loop(std::shared_ptr<Pipe> self, net::any_io_executor ex) {
  // A duplicate of the connection's socket: the descriptor closes its own when it goes (with this frame,
  // at the latest when the I/O context is destroyed), never libpq's.
  const int fd = ::dup(PQsocket(conn_));
  if (fd < 0) {
    break_pipe();
    co_return;
  }
  net::posix::basic_stream_descriptor<net::any_io_executor> sd(ex, fd);
  // However this frame ends (the loop leaves, or the I/O context is destroyed with the frame in it), the
  // pipe has no reader from then on: marked broken, it is never handed a read that nobody would answer.
  struct NoReader {
    Pipe* pipe;
    ~NoReader() {
      pipe->broken_ = true;
      pipe->waiting_ = nullptr;
    }
  } no_reader{this};
  while (!broken_) {
    const int flushed = PQflush(conn_);
    if (flushed < 0) {
      break_pipe();
      break;
    }
    waiting_ = &sd;
    auto [ec] = co_await sd.async_wait(
        flushed == 1 ? net::posix::descriptor_base::wait_write : net::posix::descriptor_base::wait_read,
        net::as_tuple(net::use_awaitable));
    waiting_ = nullptr;
    if (ec == net::error::operation_aborted) continue;  // a send left data to flush
    if (ec || PQconsumeInput(conn_) != 1) {
      break_pipe();
      break;
    }
    take_results();
  }
}

void Pipe::take_results() {
  while (!broken_ && !pending_.empty() && !PQisBusy(conn_)) {
    PGresult* res = PQgetResult(conn_);
    Pending& p = pending_.front();
    if (p.commands > 0) {
      if (!res) {  // the end of one command's results
        --p.commands;
        continue;
      }
      if (PQresultStatus(res) == PGRES_PIPELINE_ABORTED) {  // skipped after a failed command
        PQclear(res);
        continue;
      }
      try {
        p.result = to_result(res, conn_);  // the statement's result comes last
      } catch (const DbError& e) {
        if (PQstatus(conn_) != CONNECTION_OK) {
          break_pipe();
          return;
        }
        if (!p.error) {
          p.error = e;
          // The PREPARE's result comes first: if it failed, the text is prepared again next time.
          if (!p.prepared_sql.empty() && p.commands == 2) statements_.erase(p.prepared_sql);
        }
      }
      continue;
    }
    if (!res) continue;
    const bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
    PQclear(res);
    if (!sync) {  // out of step with what was sent: nothing read from here on can be trusted
      break_pipe();
      return;
    }
    Pending done = std::move(p);
    pending_.pop_front();
    if (done.error) {
      done.done(Outcome{std::nullopt, std::make_exception_ptr(*done.error)});
    } else {
      done.done(Outcome{std::move(done.result), nullptr});
    }
  }
}

void Pipe::break_pipe() {
  if (broken_) return;
  broken_ = true;
  if (waiting_) waiting_->cancel();
  // What was in flight is run elsewhere: reads are safe to run again.
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& p : pending) p.done(Outcome{});
}

}  // namespace keel::db
