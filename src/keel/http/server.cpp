// A connection's life on the server (server_state.hpp): reading each request, dispatching it to its route,
// writing the answer, keep-alive and the drain's last answers; listeners.cpp accepts the connections.
#include "keel/http/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "keel/core/error.hpp"
#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/http/body_stream.hpp"
#include "keel/http/client.hpp"
#include "keel/http/deadlines.hpp"
#include "keel/http/fast/fast_paths.hpp"
#include "keel/http/flat_parser.hpp"
#include "keel/http/io.hpp"
#include "keel/http/long_polls.hpp"
#include "keel/http/server_state.hpp"
#include "keel/http/wire.hpp"

namespace keel::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using namespace std::string_view_literals;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

namespace {

const std::string kUnmatched = "unmatched";
constexpr size_t kKeptBodyCapacity = 64 << 10;
const boost::system::error_category& kHttpCategory =
    boost::system::error_code(bhttp::error::end_of_stream).category();

}  // namespace

void Server::Impl::handle_error(const Request& req, std::optional<Response>& res) {
  try {
    throw;
  } catch (const Error& e) {
    res.emplace(problem_response(e));
  } catch (const MappedError& e) {  // a lower layer's failure (db::DbError), never its message in the body
    const Error mapped = e.http_error();
    if (mapped.status() >= 500)
      log::error("request failed", {{"request_id", req.request_id}, {"error", e.what()}});
    res.emplace(problem_response(mapped));
  } catch (const std::exception& e) {
    log::error("unhandled error", {{"request_id", req.request_id}, {"error", e.what()}});
    res.emplace(problem_response(Error(500, "Internal Server Error", "an unexpected error occurred")));
  }
}

// Writes a problem response for a request that never reached a handler (bad framing, too large), then
// the caller closes the connection.
// `e` is a named object of the caller's: see the note in auth/passwords.hpp on GCC 12 and temporaries.
net::awaitable<void> Server::Impl::reject(tcp::socket& socket, Connection& conn, const Error& e, Listener* l,
                                          const std::string& request_id) {
  Response res = problem_response(e);
  std::string head;
  append_head(head, e.status(), 11, res, request_id, {}, false, res.body.size());
  std::array<net::const_buffer, 2> bufs{net::buffer(head), net::buffer(res.body)};
  conn.deadline = coarse_steady_now() + opt.body_timeout;
  l->metrics->record(&kUnmatched, Method::Other, e.status(), 0);
  co_await io::write(socket, bufs);
}

Error Server::Impl::too_large() const {
  return Error(413, "Content Too Large",
               "the request body exceeds " + std::to_string(opt.body_limit) + " bytes");
}

net::awaitable<void> Server::Impl::serve(Worker* w, Listener* l, tcp::socket socket, bool counted) {
  Connection conn{&socket};
  w->connections.insert(&conn);
  if (!counted) open.fetch_add(1, std::memory_order_relaxed);
  struct Leave {
    Impl* self;
    Worker* w;
    Connection* c;
    ~Leave() {
      w->connections.erase(c);
      self->open.fetch_sub(1, std::memory_order_relaxed);
    }
  } leave{this, w, &conn};

  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  // One Request for the connection's life: its strings keep their capacity from one request to the next.
  Request req(nullptr, &lookup_header, &visit_headers);
  if (!ec) req.remote_ip = remote.address().to_string();
  std::unique_ptr<KeyedSlots::Slot> per_ip_slot;  // this connection's place in its address's count
  if (opt.max_connections_per_ip > 0 && !req.remote_ip.empty() &&
      (opt.per_ip_modules.empty() || std::find(opt.per_ip_modules.begin(), opt.per_ip_modules.end(),
                                               l->module) != opt.per_ip_modules.end())) {
    per_ip_slot = per_ip.take(req.remote_ip);
    if (!per_ip_slot) {
      boost::system::error_code ignore;
      socket.close(ignore);
      co_return;
    }
  }
  beast::flat_buffer buffer;
  std::string head;
  FlatMessage hreq;  // the current request, its capacity kept from one request to the next

  for (bool first = true;; first = false) {
    conn.busy = false;
    conn.partial = buffer.size() > 0;
    // Draining: a connection's first request (it was accepted, maybe from the backlog at the signal) and
    // one whose bytes have arrived are answered, with Connection: close; an idle one ends here.
    if (draining.load(std::memory_order_relaxed) && !first && !conn.partial) {
      boost::system::error_code aec;
      if (socket.available(aec) == 0 || aec) break;
    }
    FlatParser<true> parser(hreq);
    parser.body_limit(opt.body_limit);
    parser.header_limit(static_cast<std::uint32_t>(opt.header_limit));
    // Draining, a request gets a second to arrive whole: one sent before the signal has, or nearly has.
    conn.deadline = coarse_steady_now() +
                    (draining.load(std::memory_order_relaxed)
                         ? std::min<std::chrono::milliseconds>(opt.header_timeout, std::chrono::seconds(1))
                         : opt.header_timeout);
    boost::system::error_code rec;
    while (!io::parse(buffer, parser, true, rec)) {
      auto [read_error, n] =
          co_await io::async_read_short(socket, io::prepare(buffer), parser.got_some(), use_tuple);
      if (n > 0) conn.partial = true;
      if (io::received(buffer, parser, read_error, n, rec)) break;
    }
    conn.busy = true;
    if (rec) {
      const std::string rid = fast_uuid_v7();
      if (rec == bhttp::error::body_limit) {
        const Error e = too_large();
        co_await reject(socket, conn, e, l, rid);
      } else if (rec == bhttp::error::header_limit) {
        const Error e(431, "Request Header Fields Too Large", "the request headers are too large");
        co_await reject(socket, conn, e, l, rid);
      } else if (parser.unsupported_coding()) {
        const Error e(501, "Not Implemented", "the only transfer coding accepted is chunked, alone");
        co_await reject(socket, conn, e, l, rid);
      } else if (rec.category() == kHttpCategory && rec != bhttp::error::end_of_stream &&
                 rec != bhttp::error::partial_message) {
        const Error e = Error::bad_request("malformed HTTP request");
        co_await reject(socket, conn, e, l, rid);
      }
      break;  // end of stream, timeout, reset or a framing error: this connection is done
    }
    if (!parser.is_done()) {
      const std::string_view client_rid = lookup_header(&hreq, "x-request-id");
      const std::string body_rid = is_sane_request_id(client_rid) ? std::string(client_rid) : fast_uuid_v7();
      conn.deadline = coarse_steady_now() + opt.body_timeout;
      if (iequals(hreq.find("expect"), "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        const std::array<net::const_buffer, 1> cont{net::buffer(kContinue.data(), kContinue.size())};
        if (co_await io::write(socket, cont)) break;
      }
      const boost::system::error_code bec = co_await io::read(socket, buffer, parser, false);
      if (bec) {
        if (bec == bhttp::error::body_limit) {
          const Error e = too_large();
          co_await reject(socket, conn, e, l, body_rid);
        } else if (bec != bhttp::error::end_of_stream && bec != bhttp::error::partial_message &&
                   bec.category() == kHttpCategory) {
          const Error e = Error::bad_request("malformed HTTP request body");
          co_await reject(socket, conn, e, l, body_rid);
        }
        break;
      }
    }
    const auto start = std::chrono::steady_clock::now();

    req.rebind(&hreq);
    req.method = to_method(hreq.method);
    req.method_str = hreq.view(hreq.method_str);
    req.target = hreq.view(hreq.target);
    const auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    req.query = q == std::string_view::npos ? std::string_view() : req.target.substr(q + 1);
    req.body = std::move(hreq.body);
    req.path_params.clear();
    req.caller.reset();  // a kept-alive connection's next request proves itself again
    const std::string_view rid = lookup_header(&hreq, "x-request-id");
    if (is_sane_request_id(rid))
      req.request_id.assign(rid);
    else
      assign_fast_uuid_v7(req.request_id);
    parse_traceparent(lookup_header(&hreq, "traceparent"), req.trace);

    const std::string* route_label = &kUnmatched;
    // A handler may take long (a blocking query waits up to a minute); the sweeper leaves it alone.
    conn.deadline = std::chrono::steady_clock::time_point::max();
    std::optional<Response> res;
    try {
      res.emplace(co_await l->router->dispatch(req, route_label));
    } catch (...) {
      handle_error(req, res);
    }

    bool keep_alive = parser.keep_alive() && !draining.load(std::memory_order_relaxed);
    size_t body_size = res->body.size();
    const bool head_only = req.method == Method::Head;
    // A proxied HEAD announces the upstream's length, or none when it gave none (never the empty body's).
    std::optional<size_t> length = head_only && res->proxied_head ? std::optional<size_t>(res->head_length)
                                                                  : std::optional<size_t>(body_size);
    // A streamed body goes with its length when known; else chunked, or to the close for HTTP/1.0.
    const bool streamed = res->stream && !head_only;
    bool chunked = false;
    if (streamed) {
      if (res->stream->length) {
        length = body_size + *res->stream->length;
      } else if (hreq.version >= 11) {
        length.reset();
        chunked = true;
        res->raw_headers += "Transfer-Encoding: chunked\r\n"sv;
      } else {
        length.reset();
        keep_alive = false;
      }
    }
    append_head(head, res->status, hreq.version, *res, req.request_id, req.trace.traceparent(), keep_alive,
                length);
    std::array<net::const_buffer, 2> bufs{
        net::buffer(head), net::buffer(res->body.data(), head_only || chunked ? 0 : body_size)};
    // Counted before it is sent: a client that has its answer finds it in /metrics (asked on any
    // connection). The duration is the time to the answer (the head of a streamed one), its sending aside.
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    l->metrics->record(route_label, req.method, res->status, seconds, req.upstream);
    req.upstream.clear();
    conn.deadline = coarse_steady_now() + opt.body_timeout;
    boost::system::error_code wec;
    if (!io::write_now(socket, bufs, wec)) {
      auto [write_error, n] = co_await net::async_write(socket, bufs, use_tuple);
      wec = write_error;
    }
    if (streamed && !wec) {
      if (chunked && body_size > 0)
        wec = co_await write_chunk(socket, conn.deadline, opt.body_timeout, res->body);
      if (!wec)
        wec = co_await send_stream(socket, conn.deadline, opt.body_timeout, *res->stream, chunked, body_size,
                                   req.request_id);
    }
    res->stream.reset();  // an unfinished upstream body's connection closes here

    if (opt.access_log && log::enabled(log::Level::info)) {
      log::info("request", {{"module", l->module},
                            {"method", req.method_str},
                            {"path", req.path},
                            {"route", *route_label},
                            {"status", res->status},
                            {"duration_us", static_cast<int64_t>(seconds * 1e6)},
                            {"bytes", body_size},
                            {"request_id", req.request_id},
                            {"trace_id", req.trace.trace_id()},
                            {"remote", req.remote_ip}});
    }
    if (wec || !keep_alive) break;
    // The connection keeps its buffers for the next request, but not a large body's.
    if (req.body.capacity() > kKeptBodyCapacity) std::string().swap(req.body);
  }
  socket.shutdown(tcp::socket::shutdown_send, ec);
  co_return;
}

}  // namespace keel::http
