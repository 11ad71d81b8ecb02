#pragma once
// The server's side of the HTTP/1.1 wire (server.cpp runs the connections): reading a parsed request's head
// into keel's Request, writing response heads by hand, streamed bodies (chunked or with their length), and
// the listener filter a drain uses. Internal to http/.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "keel/core/error.hpp"
#include "keel/http/body_stream.hpp"
#include "keel/http/request.hpp"

namespace keel::http {

// A connection's deadline, which the worker's sweeper enforces.
using Deadline = std::chrono::steady_clock::time_point;

// Request's header access over the parser's FlatMessage (`raw`).
std::string_view lookup_header(const void* raw, std::string_view name);
void visit_headers(const void* raw, void* ctx, Request::HeaderCallback cb);
Method to_method(boost::beast::http::verb v);
// W3C traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>; a new trace when absent or invalid.
// Written into `t`, whose strings keep their capacity from the connection's previous request.
void parse_traceparent(std::string_view tp, TraceContext& t);
// An Error as an RFC 9457 problem response.
Response problem_response(const Error& e);
// The response head for `res`: status line, Content-Type, X-Request-Id, traceparent, the handler's headers
// (any with CR or LF left out), Content-Length when known, Connection.
void append_head(std::string& head, int status, unsigned version, const Response& res,
                 std::string_view request_id, std::string_view traceparent, bool keep_alive,
                 std::optional<size_t> content_length);
// One chunk of a chunked body (RFC 9112 §7.1); the write has `timeout`.
boost::asio::awaitable<boost::system::error_code> write_chunk(boost::asio::ip::tcp::socket& socket,
                                                              Deadline& deadline,
                                                              std::chrono::milliseconds timeout,
                                                              std::string_view data);
// Sends a streamed body piece by piece as its source gives them (see wire.cpp); `bytes` counts what went.
boost::asio::awaitable<boost::system::error_code> send_stream(boost::asio::ip::tcp::socket& socket,
                                                              Deadline& deadline,
                                                              std::chrono::milliseconds timeout,
                                                              BodyStream& stream, bool chunked, size_t& bytes,
                                                              const std::string& request_id);
// A socket filter on a listener that drops new connections' SYNs and lets handshakes under way finish.
void refuse_new_handshakes(int listener_fd);

}  // namespace keel::http
