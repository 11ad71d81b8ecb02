// The HTTP/1.1 parser keel's server reads requests with (and its client reads upstream responses with),
// with keel's own framing rules (RFC 9112: strict Transfer-Encoding, Content-Length): any bytes, pipelined.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "keel/http/flat_parser.hpp"

namespace {

template <bool isRequest>
void parse_all(std::string_view input) {
  keel::http::FlatMessage m;
  // Message after message, as a kept-alive connection reads them; a parser a message, as the server uses.
  for (int messages = 0; !input.empty() && messages < 64; ++messages) {
    keel::http::FlatParser<isRequest> p(m);
    p.header_limit(16 * 1024);
    p.body_limit(1 << 20);
    size_t used_total = 0;
    boost::system::error_code ec;
    while (!p.is_done() && used_total < input.size()) {
      const size_t used =
          p.put(boost::asio::buffer(input.data() + used_total, input.size() - used_total), ec);
      used_total += used;
      if (ec == boost::beast::http::error::need_more) {
        ec = {};
        break;  // the rest of a message that never arrives: the server times it out
      }
      if (ec || used == 0) break;
    }
    if (!p.is_done() || ec) return;
    // What the server reads from a parsed message.
    for (const auto& f : m.fields) (void)m.view(f.name).size();
    (void)m.find("content-length");
    (void)m.view(m.target);
    input.remove_prefix(used_total);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  parse_all<true>(input);
  parse_all<false>(input);
  return 0;
}
