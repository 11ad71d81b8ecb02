#pragma once
// Reading and writing HTTP/1.1 messages on a TCP socket for the server and the client: Beast's parsers
// without its composed operations, whose layers cost an allocation and executor bookkeeping each per call,
// and writes that try a direct send before going asynchronous. These are plain functions, not coroutines, so
// a request costs no coroutine frames for its I/O; the callers' loops are
//
//   while (!io::parse(buffer, parser, header_only, ec)) {
//     auto [rec, n] =
//         co_await io::async_read_short(socket, io::prepare(buffer), parser.got_some(), use_tuple);
//     if (io::received(buffer, parser, rec, n, ec)) break;
//   }
//
//   if (!io::write_now(socket, bufs, ec)) {
//     auto [wec, n] = co_await net::async_write(socket, bufs, use_tuple);
//     ec = wec;
//   }
//
// read() and write() wrap the same loops in coroutines for paths off the hot one. Only server.cpp and
// client.cpp include this.
#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <cerrno>

#include "keel/http/fast/nocancel.hpp"
#include "keel/http/fast/short_read.hpp"

namespace keel::http::io {

// Feeds what `buffer` holds to the parser. True when reading is over: the parser has the whole header
// (header_only) or the whole message, or `ec` says why not (Beast's errors: body_limit, header_limit, bad
// framing). False: read more.
template <bool isRequest>
bool parse(boost::beast::flat_buffer& buffer, boost::beast::http::basic_parser<isRequest>& parser,
           bool header_only, boost::system::error_code& ec) {
  const auto done = [&] { return header_only ? parser.is_header_done() : parser.is_done(); };
  // The parser is not eager: it stops after the header, and after each piece of a body, so feed it on.
  while (!done() && buffer.size() > 0) {
    const size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec == boost::beast::http::error::need_more) {
      ec = {};
      return false;
    }
    if (ec) return true;
    if (used == 0) return false;
  }
  return done();
}

// Space in `buffer` for the next read.
inline boost::beast::flat_buffer::mutable_buffers_type prepare(boost::beast::flat_buffer& buffer) {
  return buffer.prepare(boost::beast::read_size(buffer, 65536));
}

// Takes the result of a read into prepare(buffer). True when reading is over with `ec` set (a socket error,
// end_of_stream when the peer closed before sending anything, partial_message) or with the message complete
// (a body delimited by the end of the connection); false: parse and read on.
template <bool isRequest>
bool received(boost::beast::flat_buffer& buffer, boost::beast::http::basic_parser<isRequest>& parser,
              const boost::system::error_code& rec, size_t n, boost::system::error_code& ec) {
  buffer.commit(n);
  if (rec == boost::asio::error::eof) {
    if (!parser.got_some()) {
      ec = boost::beast::http::error::end_of_stream;
    } else {
      ec = {};
      parser.put_eof(ec);
    }
    return true;
  }
  ec = rec;
  return static_cast<bool>(rec);
}

// Drops the first n bytes of a buffer sequence held in an array.
template <size_t N>
void consume(std::array<boost::asio::const_buffer, N>& bufs, size_t n) {
  for (auto& b : bufs) {
    const size_t k = std::min(n, b.size());
    b += k;
    n -= k;
  }
}

// One direct non-blocking send of bufs, which for a small message on a healthy connection is the whole of
// it. True when done (everything sent, or `ec` holds the error); false: `bufs` now holds what is left, for
// an asynchronous write.
template <size_t N>
bool write_now(boost::asio::ip::tcp::socket& socket, std::array<boost::asio::const_buffer, N>& bufs,
               boost::system::error_code& ec) {
  ec = {};
  if (!socket.non_blocking()) socket.non_blocking(true, ec);
  if (ec) return true;
  std::array<iovec, N> iov{};
  size_t count = 0, total = 0;
  for (const auto& b : bufs) {
    if (b.size() == 0) continue;
    iov[count++] = iovec{const_cast<void*>(b.data()), b.size()};
    total += b.size();
  }
  if (total == 0) return true;
  msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  const ssize_t sent = sys::sendmsg(socket.native_handle(), &msg, MSG_NOSIGNAL);
  if (sent < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    ec = boost::system::error_code(errno, boost::asio::error::get_system_category());
    return true;
  }
  if (static_cast<size_t>(sent) == total) return true;
  consume(bufs, static_cast<size_t>(sent));
  return false;
}

// The same loops as coroutines, for the paths off the hot one (request bodies, error answers).
template <bool isRequest>
boost::asio::awaitable<boost::system::error_code> read(boost::asio::ip::tcp::socket& socket,
                                                       boost::beast::flat_buffer& buffer,
                                                       boost::beast::http::basic_parser<isRequest>& parser,
                                                       bool header_only) {
  boost::system::error_code ec;
  while (!parse(buffer, parser, header_only, ec)) {
    auto [rec, n] = co_await async_read_short(socket, prepare(buffer), true,
                                              boost::asio::as_tuple(boost::asio::use_awaitable));
    if (received(buffer, parser, rec, n, ec)) break;
  }
  co_return ec;
}

template <size_t N>
boost::asio::awaitable<boost::system::error_code> write(boost::asio::ip::tcp::socket& socket,
                                                        std::array<boost::asio::const_buffer, N> bufs) {
  boost::system::error_code ec;
  if (!write_now(socket, bufs, ec)) {
    auto [wec, n] =
        co_await boost::asio::async_write(socket, bufs, boost::asio::as_tuple(boost::asio::use_awaitable));
    ec = wec;
  }
  co_return ec;
}

}  // namespace keel::http::io
