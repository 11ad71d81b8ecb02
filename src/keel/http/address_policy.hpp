#pragma once
// Which addresses keel sends requests to on behalf of the registry (CONTRACT.md, "Safety rules"): a
// registered instance gets users' requests through the gateway and the registry's health checks, so an
// instance URL must not turn keel into a way to reach the cloud's metadata service, link-local hosts, or
// keel's own modules dressed as a third party.
//
// Refused always: unspecified (0.0.0.0/8, ::), link-local (169.254.0.0/16 and fe80::/10, where cloud
// metadata answers: 169.254.169.254), AWS's IPv6 metadata address (fd00:ec2::254), multicast and broadcast;
// then the operator's own list ([registry] deny, CIDRs). Loopback is allowed (a module on the same machine)
// except, for a module that is not keel's own, keel's own ports there and on this machine's other addresses.
// IPv4-mapped IPv6 addresses, and NAT64 (64:ff9b::/96) and 6to4 (2002::/16) ones, are
// judged as the IPv4 address they carry (too).
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace keel {
struct Config;
}

namespace keel::http {

struct Cidr {
  boost::asio::ip::address network;
  unsigned prefix = 0;
  // "10.0.0.0/8", "fd00::/8", or one address ("192.0.2.7"); nullopt for anything else.
  static std::optional<Cidr> parse(std::string_view text);
  bool contains(const boost::asio::ip::address& a) const;
};

class AddressPolicy {
 public:
  // `local`: this machine's own addresses (besides loopback), where keel's own ports are keel's too.
  AddressPolicy(std::vector<Cidr> deny, std::vector<uint16_t> own_ports,
                std::vector<boost::asio::ip::address> local = {});
  // From the config: [registry] deny (a list of CIDRs; a bad one is a ConfigError) and keel's module ports;
  // this machine's interface addresses as they are at the call.
  static AddressPolicy from(const Config& config);

  // Why keel must not send a request to `a`:`port` for a module (`keel_module`: one of keel's own), or
  // nullopt when it may.
  std::optional<std::string> refuse(boost::asio::ip::address a, uint16_t port, bool keel_module) const;

 private:
  std::vector<Cidr> deny_;
  std::vector<uint16_t> own_ports_;
  std::vector<boost::asio::ip::address> local_;
};

}  // namespace keel::http
