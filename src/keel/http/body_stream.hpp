#pragma once
// A response body produced piece by piece: a proxied upstream's body that is large or has no known end (a
// download, an event stream). The server sends each piece as it comes, so a proxy holds one piece per
// connection rather than the whole body, and a client sees the first bytes while the rest is on its way.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>

namespace keel::http {

class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // The next piece into `piece` (replacing what it held); false when the body has ended. Throws when it
  // cannot be completed (the source failed or timed out): the receiver must not take it for a whole body.
  // Call it from the I/O thread that produced the stream, one call at a time.
  virtual boost::asio::awaitable<bool> next(std::string& piece) = 0;
  // The body's whole length when the source announced it (Content-Length).
  std::optional<uint64_t> length;
};

}  // namespace keel::http
