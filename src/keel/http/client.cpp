#include "keel/http/client.hpp"

#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <functional>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "keel/http/deadlines.hpp"
#include "keel/http/flat_parser.hpp"
#include "keel/http/io.hpp"
#include "keel/http/name_lookups.hpp"
#include "keel/http/request.hpp"

namespace keel::http {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::string_view_literals;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

namespace {

// A connection with everything one exchange needs, kept with it so that an exchange allocates little: the
// request head's string, and the response parser's flat message.
struct PooledConnection {
  tcp::socket socket;                                // plain http
  std::optional<net::ssl::stream<tcp::socket>> tls;  // https: the socket moves in here
  boost::beast::flat_buffer buffer;
  Watched watch;
  std::chrono::steady_clock::time_point idle_since;
  std::string head;  // request line and Host
  std::string tail;  // Content-Length and the blank line
  FlatMessage response;
  std::optional<FlatParser<false>> parser;
  explicit PooledConnection(const net::any_io_executor& ex) : socket(ex) { watch.socket = &socket; }
  tcp::socket& tcp_socket() { return tls ? tls->next_layer() : socket; }
  FlatParser<false>& new_parser() {
    parser.reset();
    return parser.emplace(response);
  }
};

constexpr auto kMaxIdle = std::chrono::seconds(4);
constexpr size_t kKeptCapacity = 64 << 10;  // buffers kept with a pooled connection stay below this

// One TLS client configuration for the process: the system's CAs (OpenSSL's default paths, which honour
// SSL_CERT_FILE and SSL_CERT_DIR), peer verification, TLS 1.2 at least.
net::ssl::context& tls_context() {
  static net::ssl::context ctx = [] {
    net::ssl::context c(net::ssl::context::tls_client);
    c.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                  net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1);
    c.set_default_verify_paths();
    c.set_verify_mode(net::ssl::verify_peer);
    return c;
  }();
  return ctx;
}

using IdleMap = std::unordered_map<std::string, std::vector<std::unique_ptr<PooledConnection>>>;
IdleMap& idle_connections() {
  thread_local IdleMap idle;
  return idle;
}

// Fields a proxy must not pass on as they are.
bool dropped_response_field(bhttp::field f, std::string_view name) {
  switch (f) {
    case bhttp::field::connection:
    case bhttp::field::keep_alive:
    case bhttp::field::proxy_authenticate:
    case bhttp::field::proxy_authorization:
    case bhttp::field::te:
    case bhttp::field::trailer:
    case bhttp::field::transfer_encoding:
    case bhttp::field::upgrade:
    case bhttp::field::content_length:
      return true;
    default:
      return iequals(name, "x-request-id") || iequals(name, "traceparent");
  }
}

// The request's head around its fields: `head` before them, `tail` after.
void request_head(const Endpoint& to, const ClientRequest& req, std::string& head, std::string& tail) {
  head.clear();
  head += req.method;
  head += ' ';
  head += to.base_path;
  head += req.target;
  head += " HTTP/1.1\r\nHost: "sv;
  head += to.host_header;
  head += "\r\n"sv;
  tail.clear();
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    tail += "Content-Length: "sv;
    append_number(tail, req.body.size());
    tail += "\r\n"sv;
  }
  tail += "\r\n"sv;
}

// A new connection to `to`, within the connect timeout. A coroutine of its own, so that its locals do not
// weigh on fetch's frame, which every proxied request allocates.
net::awaitable<std::unique_ptr<PooledConnection>> open_connection(const Endpoint& to,
                                                                  const ClientOptions& opt) {
  auto ex = co_await net::this_coro::executor;
  auto c = std::make_unique<PooledConnection>(ex);
  WatchGuard guard(&c->watch);
  c->watch.expires_after(opt.connect_timeout);
  boost::system::error_code ec;
  std::vector<tcp::endpoint> candidates;
  const auto addr = net::ip::make_address(to.host, ec);
  const bool by_name = static_cast<bool>(ec);  // not an address literal
  if (!by_name) {
    candidates.emplace_back(addr, to.port);
  } else {
    // The sweeper's deadline closes the socket, which does not stop a name lookup, and a lookup cannot be
    // interrupted: it goes on by itself and ends the wait on the timer if it finishes first; otherwise the
    // timer ends the wait, at the connect deadline.
    NameLookups& lookups = NameLookups::instance();
    if (!lookups.cached(to.host, to.port, candidates)) {
      struct Lookup {
        net::steady_timer wait;
        bool finished = false;
        boost::system::error_code ec;
        NameLookups::Endpoints endpoints;
        Lookup(const net::any_io_executor& ex, std::chrono::steady_clock::time_point deadline)
            : wait(ex, deadline) {}
      };
      auto lookup = std::make_shared<Lookup>(ex, c->watch.deadline);
      lookups.resolve(to.host, to.port, ex,
                      [lookup](const boost::system::error_code& e, const NameLookups::Endpoints& endpoints) {
                        lookup->finished = true;
                        lookup->ec = e;
                        lookup->endpoints = endpoints;
                        lookup->wait.cancel();
                      });
      co_await lookup->wait.async_wait(use_tuple);
      if (!lookup->finished) throw ClientError("resolving " + to.host + " timed out", false, true);
      if (lookup->ec) throw ClientError("cannot resolve " + to.host, false, false);
      // Every address the name has, in the resolver's order ("localhost" may give ::1 before 127.0.0.1).
      candidates = std::move(lookup->endpoints);
    }
  }
  if (opt.policy) {
    std::string why;
    std::erase_if(candidates, [&](const tcp::endpoint& e) {
      auto refused = opt.policy->refuse(e.address(), e.port(), opt.keel_target);
      if (refused) why = *refused;
      return refused.has_value();
    });
    if (candidates.empty()) throw ClientError("refused to connect to " + to.key + ": " + why, false, false);
  }
  auto [cec, ep] = co_await net::async_connect(c->socket, candidates, use_tuple);
  if (cec) throw ClientError("cannot connect to " + to.key + ": " + cec.message(), false, c->watch.expired);
  // To wait for the connect, Asio registered the socket for writability with epoll, and that stays: every ACK
  // that frees send space would then wake the reactor for nothing, about once per exchange. Registering the
  // connected socket afresh drops it (writes are tried directly, and register again only if one must wait).
  const auto fd = c->socket.release(ec);
  if (!ec) {
    c->socket.assign(ep.protocol(), fd, ec);
    if (ec) ::close(fd);
  }
  if (ec) throw ClientError("cannot connect to " + to.key + ": " + ec.message(), false, false);
  c->socket.set_option(tcp::no_delay(true), ec);
  if (to.tls) {
    // The handshake runs under the same connect deadline (the watch follows the socket into the stream).
    try {
      c->tls.emplace(std::move(c->socket), tls_context());
    } catch (const boost::system::system_error& e) {
      throw ClientError("cannot set up TLS to " + to.key + ": " + e.code().message(), false, false);
    }
    auto& tls = *c->tls;
    c->watch.socket = &tls.next_layer();
    // Server names only: RFC 6066 keeps address literals out of SNI (the certificate check covers them).
    if (by_name && !SSL_set_tlsext_host_name(tls.native_handle(), to.host.c_str()))
      throw ClientError("cannot connect to " + to.key + ": bad TLS server name", false, false);
    tls.set_verify_callback(net::ssl::host_name_verification(to.host));
    auto [hec] = co_await tls.async_handshake(net::ssl::stream_base::client, use_tuple);
    if (hec)
      throw ClientError("TLS handshake with " + to.key + " failed: " + hec.message(), false,
                        c->watch.expired);
  }
  co_return c;
}

// A response body read piece by piece from its connection, which goes back to the pool once the body has
// been read to its end.
class UpstreamBody final : public BodyStream {
 public:
  UpstreamBody(std::unique_ptr<PooledConnection> c, std::string key, const ClientOptions& opt,
               std::optional<uint64_t> content_length, bool event_stream)
      : c_(std::move(c)),
        key_(std::move(key)),
        timeout_(event_stream ? std::max(opt.timeout, opt.event_stream_idle) : opt.timeout),
        max_idle_(opt.max_idle_per_upstream) {
    length = content_length;
  }

  net::awaitable<bool> next(std::string& piece) override {
    piece.clear();
    if (!c_) co_return false;
    bool more = false;
    {
      PooledConnection& c = *c_;
      FlatParser<false>& parser = *c.parser;
      WatchGuard guard(&c.watch);  // the wait for each piece has its own deadline
      c.watch.expires_after(timeout_);
      boost::system::error_code ec;
      for (;;) {
        const bool finished = io::parse(c.buffer, parser, false, ec);
        if (ec) throw ClientError("reading from " + key_ + ": " + ec.message(), true, c.watch.expired);
        if (!c.response.body.empty()) {
          piece.swap(c.response.body);
          c.response.body.clear();
          done_ = finished;
          more = true;
          break;
        }
        if (finished) {
          done_ = true;
          break;
        }
        boost::system::error_code read_error;
        size_t n = 0;
        if (c.tls) {
          std::tie(read_error, n) = co_await c.tls->async_read_some(io::prepare(c.buffer), use_tuple);
        } else {
          std::tie(read_error, n) =
              co_await io::async_read_short(c.socket, io::prepare(c.buffer), true, use_tuple);
        }
        if (io::received(c.buffer, parser, read_error, n, ec) && ec)
          throw ClientError("reading from " + key_ + ": " + ec.message(), true, c.watch.expired);
      }
      c.watch.clear();
    }
    if (done_) release();
    co_return more;
  }

 private:
  // The body is read to its end: the connection goes back to its thread's pool when nothing unread is left.
  void release() {
    std::unique_ptr<PooledConnection> c = std::move(c_);
    if (!c->parser->keep_alive() || c->buffer.size() != 0) return;
    if (c->response.body.capacity() > kKeptCapacity) std::string().swap(c->response.body);
    auto& idle = idle_connections()[key_];
    c->idle_since = coarse_steady_now();
    if (idle.size() < max_idle_) idle.push_back(std::move(c));
  }

  std::unique_ptr<PooledConnection> c_;
  std::string key_;
  std::chrono::milliseconds timeout_;
  size_t max_idle_;
  bool done_ = false;
};

}  // namespace

void forget_lookups(net::execution_context& ctx) { NameLookups::instance().forget(ctx); }

void drop_idle_connections() { idle_connections().clear(); }

net::awaitable<ClientResponse> fetch(const Endpoint& to, const ClientRequest& req, const ClientOptions& opt) {
  const std::string& key = to.key;
  // This thread's idle connections to `to` (a map's elements stay where they are while others come and go).
  auto& idle = idle_connections()[key];
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<PooledConnection> c;
    bool reused = false;
    if (attempt == 0) {
      // Reuse only connections idle for less than kMaxIdle: servers close idle keep-alive connections (keel's
      // own after 10 s), and a stale one costs a failed round trip.
      const auto fresh_since = coarse_steady_now() - kMaxIdle;
      while (!idle.empty() && !c) {
        c = std::move(idle.back());
        idle.pop_back();
        if (!c->tcp_socket().is_open() || c->idle_since < fresh_since) c.reset();
      }
      reused = c != nullptr;
    } else {
      idle.clear();  // one stale connection: the rest of that pool is suspect too
    }
    if (!c) c = co_await open_connection(to, opt);
    WatchGuard guard(&c->watch);
    c->watch.expires_after(opt.timeout);
    request_head(to, req, c->head, c->tail);
    boost::system::error_code ec;
    if (c->tls) {
      // One TLS record for the request, not one per buffer (a stream's writes take one buffer at a time).
      c->head += req.fields;
      c->head += c->tail;
      c->head += req.body;
      auto [write_error, n] = co_await net::async_write(*c->tls, net::buffer(c->head), use_tuple);
      ec = write_error;
      if (c->head.capacity() > kKeptCapacity) std::string().swap(c->head);  // a large body went with it
    } else {
      std::array<net::const_buffer, 4> bufs{
          net::buffer(c->head), net::buffer(req.fields.data(), req.fields.size()), net::buffer(c->tail),
          net::buffer(req.body.data(), req.body.size())};
      if (!io::write_now(c->socket, bufs, ec)) {
        auto [write_error, n] = co_await net::async_write(c->socket, bufs, use_tuple);
        ec = write_error;
      }
    }
    if (ec) {
      if (reused && attempt == 0) continue;  // a pooled connection the upstream had closed
      throw ClientError("sending to " + key + ": " + ec.message(), true, c->watch.expired);
    }
    bool answered = false;  // any byte of an answer came back
    bool stream = false;
    FlatParser<false>* parser = nullptr;
    // The head first: an interim 1xx answer (100 Continue) is not the response, so read on with a fresh
    // parser. Then the body, unless it is to be streamed.
    for (bool header_only = true;;) {
      if (header_only) {
        parser = &c->new_parser();
        if (opt.stream_above != 0) {
          parser->body_limit(boost::none);
          parser->reserve_limit(opt.stream_above);
        } else {
          parser->body_limit(opt.body_limit);
        }
        if (req.method == "HEAD") parser->skip(true);
      }
      while (!io::parse(c->buffer, *parser, header_only, ec)) {
        boost::system::error_code read_error;
        size_t n = 0;
        if (c->tls) {
          std::tie(read_error, n) = co_await c->tls->async_read_some(io::prepare(c->buffer), use_tuple);
          // A pooled TLS connection the upstream closed without close_notify, before answering: the same as a
          // plain close (and retried). Within an answer it stays an error: a body cut short by an attacker
          // must not pass for one delimited by the close.
          if (read_error == net::ssl::error::stream_truncated && !parser->got_some())
            read_error = net::error::eof;
        } else {
          std::tie(read_error, n) = co_await io::async_read_short(c->socket, io::prepare(c->buffer),
                                                                  answered || parser->got_some(), use_tuple);
        }
        if (io::received(c->buffer, *parser, read_error, n, ec)) break;
      }
      answered = answered || parser->got_some();
      if (ec || !header_only) break;
      if (c->response.status >= 100 && c->response.status < 200) continue;
      header_only = false;
      if (opt.stream_above != 0 && !parser->is_done()) {
        const auto length = parser->content_length();
        if (!length || *length > opt.stream_above) {
          stream = true;
          break;
        }
      }
    }
    if (ec) {
      // A pooled connection closed by the upstream before it answered: send it again on a new one.
      if (reused && attempt == 0 && !answered && !c->watch.expired) continue;
      throw ClientError("reading from " + key + ": " + ec.message(), true, c->watch.expired);
    }
    const FlatMessage& msg = c->response;
    ClientResponse out;
    out.status = msg.status;
    out.fields.reserve(msg.text.size() + 4 * msg.fields.size());
    bool event_stream = false;
    for (const auto& f : msg.fields) {
      const std::string_view name = msg.view(f.name), value = msg.view(f.value);
      if (!dropped_response_field(f.id, name)) append_field_unchecked(out.fields, name, value);
      if (iequals(name, "content-type") && value.size() >= 17 &&
          iequals(value.substr(0, 17), "text/event-stream"))
        event_stream = true;
    }
    if (const auto length = parser->content_length()) out.content_length = *length;
    c->watch.clear();
    if (stream) {
      out.stream = std::make_shared<UpstreamBody>(std::move(c), key, opt, out.content_length, event_stream);
      co_return out;
    }
    out.body = std::move(c->response.body);
    // Back to the pool only when nothing unread is left on it.
    if (parser->keep_alive() && c->buffer.size() == 0) {
      c->idle_since = coarse_steady_now();
      if (idle.size() < opt.max_idle_per_upstream) idle.push_back(std::move(c));
    }
    co_return out;
  }
  throw ClientError("no connection to " + key, true, false);
}

}  // namespace keel::http
