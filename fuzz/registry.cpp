// What a registration names: the instance URL (and the address policy that judges it) and route prefixes.
// A prefix accepted as normalized must be one: no empty, "." or ".." segment, no '%', no trailing '/'.
#include <cstddef>
#include <cstdint>
#include <string>

#include "keel/http/address_policy.hpp"
#include "keel/http/client.hpp"
#include "keel/registry/routes.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  if (auto ep = keel::http::Endpoint::parse(input)) {
    if (ep->host.empty() || ep->port == 0) __builtin_trap();
    static const keel::http::AddressPolicy policy({}, {8000, 8001, 8002, 8003, 8004, 8005});
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(ep->host, ec);
    if (!ec) (void)policy.refuse(a, ep->port, false);
  }
  if (keel::registry::normalized_prefix(input)) {
    if (input.empty() || input[0] != '/' || input.find('%') != std::string::npos) __builtin_trap();
    if (input != "/" && (input.back() == '/' || input.find("//") != std::string::npos ||
                         input.find("/./") != std::string::npos || input.find("/../") != std::string::npos))
      __builtin_trap();
  }
  if (auto c = keel::http::Cidr::parse(input)) (void)c->contains(c->network);
  return 0;
}
