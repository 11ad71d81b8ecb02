#include "keel/http/wire.hpp"

#include <linux/filter.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/status.hpp>
#include <cerrno>
#include <charconv>

#include "keel/core/ids.hpp"
#include "keel/core/log.hpp"
#include "keel/core/time.hpp"
#include "keel/http/flat_parser.hpp"
#include "keel/http/io.hpp"

namespace keel::http {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;
using namespace std::string_view_literals;

namespace {
bool is_hex(std::string_view s) {
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}
}  // namespace

std::string_view lookup_header(const void* raw, std::string_view name) {
  return static_cast<const FlatMessage*>(raw)->find(name);
}

void visit_headers(const void* raw, void* ctx, Request::HeaderCallback cb) {
  const auto& msg = *static_cast<const FlatMessage*>(raw);
  for (const auto& f : msg.fields) cb(ctx, msg.view(f.name), msg.view(f.value));
}

Method to_method(bhttp::verb v) {
  switch (v) {
    case bhttp::verb::get:
      return Method::Get;
    case bhttp::verb::head:
      return Method::Head;
    case bhttp::verb::post:
      return Method::Post;
    case bhttp::verb::put:
      return Method::Put;
    case bhttp::verb::patch:
      return Method::Patch;
    case bhttp::verb::delete_:
      return Method::Delete;
    case bhttp::verb::options:
      return Method::Options;
    default:
      return Method::Other;
  }
}

void parse_traceparent(std::string_view tp, TraceContext& t) {
  t.header.clear();
  t.parent_id.clear();
  t.header.reserve(55);
  t.header += "00-"sv;
  std::string_view flags = "01";
  if (tp.size() == 55 && tp[2] == '-' && tp[35] == '-' && tp[52] == '-' && is_hex(tp.substr(0, 2)) &&
      tp.substr(0, 2) != "ff" && is_hex(tp.substr(3, 32)) && is_hex(tp.substr(36, 16)) &&
      is_hex(tp.substr(53, 2)) && tp.substr(3, 32) != std::string_view("00000000000000000000000000000000") &&
      tp.substr(36, 16) != std::string_view("0000000000000000")) {
    t.header += tp.substr(3, 32);
    t.parent_id.assign(tp.substr(36, 16));
    flags = tp.substr(53, 2);
  } else {
    append_fast_hex(t.header, 16);
  }
  t.header += '-';
  append_fast_hex(t.header, 8);
  t.header += '-';
  t.header += flags;
}

Response problem_response(const Error& e) {
  Response r{e.status(), "application/problem+json", problem_json(e), {}, {}, {}, false, nullptr};
  for (const auto& h : e.headers) r.headers.push_back(h);
  return r;
}

// HTTP/1.1 response head, written by hand: a few appends into a reused buffer cost far less than Beast's
// generic serializer, and every header value here is ours (handlers' values are checked for CR/LF).
void append_head(std::string& head, int status, unsigned version, const Response& res,
                 std::string_view request_id, std::string_view traceparent, bool keep_alive,
                 std::optional<size_t> content_length) {
  head.clear();
  head += version == 10 ? "HTTP/1.0 "sv : "HTTP/1.1 "sv;
  append_number(head, static_cast<uint64_t>(status));
  head += ' ';
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  head.append(reason.data(), reason.size());
  head += "\r\n"sv;
  if (!res.content_type.empty()) {
    head += "Content-Type: "sv;
    head += res.content_type;
    head += "\r\n"sv;
  }
  head += "X-Request-Id: "sv;
  head += request_id;
  head += "\r\n"sv;
  if (!traceparent.empty()) {
    head += "traceparent: "sv;
    head += traceparent;
    head += "\r\n"sv;
  }
  for (const auto& [k, v] : res.headers) {
    if (has_crlf(k) || k.find(':') != std::string::npos || has_crlf(v)) continue;
    head += k;
    head += ": "sv;
    head += v;
    head += "\r\n"sv;
  }
  head += res.raw_headers;
  if (status != 204 && status != 304 && content_length) {
    head += "Content-Length: "sv;
    append_number(head, *content_length);
    head += "\r\n"sv;
  }
  if (!keep_alive)
    head += "Connection: close\r\n"sv;
  else if (version == 10)
    head += "Connection: keep-alive\r\n"sv;
  head += "\r\n"sv;
}

// One chunk of a chunked body (RFC 9112 §7.1): its size in hex, the data, CRLF.
net::awaitable<boost::system::error_code> write_chunk(tcp::socket& socket, Deadline& deadline,
                                                      std::chrono::milliseconds timeout,
                                                      std::string_view data) {
  char size_line[24];
  auto r = std::to_chars(size_line, size_line + 16, data.size(), 16);
  *r.ptr++ = '\r';
  *r.ptr++ = '\n';
  std::array<net::const_buffer, 3> bufs{net::buffer(size_line, static_cast<size_t>(r.ptr - size_line)),
                                        net::buffer(data.data(), data.size()),
                                        net::buffer("\r\n"sv.data(), 2)};
  deadline = coarse_steady_now() + timeout;
  co_return co_await io::write(socket, bufs);
}

// Sends a streamed body piece by piece as its source gives them: one piece held at a time, the next one
// asked for only once the client has taken this one. The wait for a piece is the source's to bound; each
// write has the body timeout. An error (the client gone, the source failed) ends the connection, so the
// client cannot take a cut body for a whole one: it misses the last chunk or some of the announced length.
net::awaitable<boost::system::error_code> send_stream(tcp::socket& socket, Deadline& deadline,
                                                      std::chrono::milliseconds timeout, BodyStream& stream,
                                                      bool chunked, size_t& bytes,
                                                      const std::string& request_id) {
  std::string piece;
  for (;;) {
    deadline = Deadline::max();
    bool more = false;
    try {
      more = co_await stream.next(piece);
    } catch (const std::exception& e) {
      log::warn("streamed body cut short", {{"request_id", request_id}, {"error", e.what()}});
      co_return net::error::connection_aborted;
    }
    if (!more) break;
    bytes += piece.size();
    if (chunked) {
      if (auto ec = co_await write_chunk(socket, deadline, timeout, piece)) co_return ec;
    } else {
      deadline = coarse_steady_now() + timeout;
      std::array<net::const_buffer, 1> bufs{net::buffer(piece)};
      if (auto ec = co_await io::write(socket, bufs)) co_return ec;
    }
  }
  if (!chunked) co_return boost::system::error_code();
  static constexpr std::string_view kLast = "0\r\n\r\n";
  std::array<net::const_buffer, 1> last{net::buffer(kLast.data(), kLast.size())};
  deadline = coarse_steady_now() + timeout;
  co_return co_await io::write(socket, last);
}

// A socket filter on a listener: drops segments with SYN and not ACK (new connections), lets every other
// through (the final ACK of a handshake under way). A TCP socket's filter sees the TCP header at offset 0;
// the flags are its byte 13.
void refuse_new_handshakes(int listener_fd) {
  static sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),
      BPF_STMT(BPF_ALU | BPF_AND | BPF_K, 0x12),  // SYN | ACK
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0x02, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, 0),  // SYN alone: dropped
      BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  if (::setsockopt(listener_fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0)
    log::warn("drain: could not stop new handshakes on a listener", {{"errno", errno}});
}

}  // namespace keel::http
