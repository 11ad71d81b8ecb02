#pragma once
// An HTTP/1.1 client for upstreams (gateway proxying, registry health checks): keep-alive connections pooled
// per I/O thread and upstream, deadlines instead of per-operation timers. Call it from an I/O thread whose
// server runs the deadline sweeper.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "keel/http/address_policy.hpp"
#include "keel/http/body_stream.hpp"

namespace keel::http {

struct Endpoint {
  std::string host;
  uint16_t port = 80;
  bool tls = false;       // https: TLS with the peer's certificate checked against the system's CAs
  std::string base_path;  // the URL's path, without a trailing '/'
  std::string key;        // scheme://host:port, the connection pool's key
  std::string host_header;
  // Parses http(s)://host[:port][/path]; nullopt for anything else.
  static std::optional<Endpoint> parse(std::string_view url);
};

// Header fields travel as formatted "Name: value\r\n" lines: a proxy builds and forwards them with one
// string each way instead of a container of small strings. The request only views its parts, which the
// caller keeps alive until fetch() returns; they are sent as they are, without being copied together.
struct ClientRequest {
  std::string_view method = "GET";
  std::string_view target = "/";
  std::string_view fields;  // formatted lines (append_field), without Host and Content-Length
  std::string_view body;
};

// Appends "name: value\r\n" to `fields`; a name or value holding CR or LF (or a name holding ':') is dropped.
void append_field(std::string& fields, std::string_view name, std::string_view value);
// The same without the checks, for fields known to be well formed: as Beast's parser gave them (a token for
// a name, a value without CR, LF or other controls), or a literal name with a value keel made itself.
inline void append_field_unchecked(std::string& fields, std::string_view name, std::string_view value) {
  fields.append(name);
  fields.append(": ", 2);
  fields.append(value);
  fields.append("\r\n", 2);
}

struct ClientResponse {
  int status = 0;
  // End-to-end fields only, Content-Type among them: hop-by-hop ones, Content-Length, X-Request-Id and
  // traceparent (which a proxy writes itself) are left out.
  std::string fields;
  std::string body;
  // Set instead of `body` when the options asked for a large or open-ended body to be streamed: read it
  // with next() on the same I/O thread. The connection goes back to the pool once the body has been read to
  // its end; dropping the stream before that closes it.
  std::shared_ptr<BodyStream> stream;
  // The upstream's Content-Length: for an answer to HEAD, the length of the body a GET would have had.
  std::optional<uint64_t> content_length;
};

class ClientError : public std::runtime_error {
 public:
  // `delivered` is false when the request certainly never reached the upstream (connect failed), so it is
  // safe to send it elsewhere whatever its method.
  ClientError(const std::string& what, bool delivered, bool timed_out)
      : std::runtime_error(what), delivered_(delivered), timed_out_(timed_out) {}
  bool delivered() const { return delivered_; }
  bool timed_out() const { return timed_out_; }

 private:
  bool delivered_;
  bool timed_out_;
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds timeout{30000};  // for the whole exchange after connecting
  size_t body_limit = 64 << 20;
  // Non-zero: a body of unknown length (chunked, or ended by the close) or longer than this is streamed
  // (ClientResponse::stream) rather than read whole, without body_limit; `timeout` then bounds the wait for
  // the head and, afresh, for each piece of the body.
  size_t stream_above = 0;
  // A streamed Server-Sent Events body (text/event-stream) waits this long for each piece instead: a stream
  // is quiet between its events (keel's sends a keep-alive comment every 15 s), and is not a slow answer.
  std::chrono::milliseconds event_stream_idle{60000};
  size_t max_idle_per_upstream = 256;
  // When set, a connection goes only to addresses the policy allows (judged after the name lookup, on the
  // addresses connected to); `keel_target`: the upstream is one of keel's own modules.
  const AddressPolicy* policy = nullptr;
  bool keel_target = false;
};

// One exchange; throws ClientError. Arguments are named objects of the caller (see auth/passwords.hpp).
boost::asio::awaitable<ClientResponse> fetch(const Endpoint& to, const ClientRequest& req,
                                             const ClientOptions& opt);

// Closes the calling thread's pooled idle connections. An I/O thread calls it once its io_context has stopped
// running, before the context is destroyed: the pool is the thread's, its sockets the context's, and the
// main thread's pool would otherwise outlive the context it points into (a use-after-free at exit).
void drop_idle_connections();

// Before an io_context that ran fetch() is destroyed: a name lookup still under way (a hanging DNS server)
// then answers no one on it.
void forget_lookups(boost::asio::execution_context& ctx);

}  // namespace keel::http
