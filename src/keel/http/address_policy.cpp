#include "keel/http/address_policy.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <charconv>

#include "keel/core/config.hpp"

namespace keel::http {

namespace ip = boost::asio::ip;

namespace {

ip::address unmapped(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

std::vector<Cidr> always_refused() {
  std::vector<Cidr> out;
  for (const char* c : {"0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", "::/128",
                        "fe80::/10", "fd00:ec2::254/128", "ff00::/8"})
    out.push_back(*Cidr::parse(c));
  return out;
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text) {
  const size_t slash = text.find('/');
  boost::system::error_code ec;
  const auto a = ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) return std::nullopt;
  const unsigned max = a.is_v4() ? 32 : 128;
  unsigned prefix = max;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    auto [end, err] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || err != std::errc() || end != p.data() + p.size() || prefix > max) return std::nullopt;
  }
  // An IPv4-mapped network ("::ffff:10.0.0.0/104") is the IPv4 one it maps: its prefix counts the 96 bits
  // of the mapping, which the IPv4 form has not (a fuzzer found the unadjusted prefix read past the bytes).
  const ip::address network = unmapped(a);
  if (network.is_v4() && a.is_v6()) {
    if (prefix < 96) return std::nullopt;
    prefix -= 96;
  }
  return Cidr{network, prefix};
}

bool Cidr::contains(const ip::address& raw) const {
  const ip::address a = unmapped(raw);
  if (a.is_v4() != network.is_v4()) return false;
  auto bytes_of = [](const ip::address& x) {
    std::vector<unsigned char> b;
    if (x.is_v4()) {
      const auto v = x.to_v4().to_bytes();
      b.assign(v.begin(), v.end());
    } else {
      const auto v = x.to_v6().to_bytes();
      b.assign(v.begin(), v.end());
    }
    return b;
  };
  const auto x = bytes_of(a), n = bytes_of(network);
  for (unsigned bit = 0; bit < prefix; ++bit) {
    const unsigned mask = 0x80u >> (bit % 8);
    if ((x[bit / 8] & mask) != (n[bit / 8] & mask)) return false;
  }
  return true;
}

AddressPolicy::AddressPolicy(std::vector<Cidr> deny, std::vector<uint16_t> own_ports,
                             std::vector<ip::address> local)
    : deny_(always_refused()), own_ports_(std::move(own_ports)), local_(std::move(local)) {
  deny_.insert(deny_.end(), deny.begin(), deny.end());
}

AddressPolicy AddressPolicy::from(const Config& config) {
  std::vector<Cidr> deny;
  // [registry] deny: read here, where it is parsed (registry/settings.hpp declares it).
  if (auto it = config.module_settings.find("registry.deny"); it != config.module_settings.end()) {
    std::string_view rest = it->second;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (item.empty()) continue;
      auto c = Cidr::parse(item);
      if (!c)
        throw ConfigError("registry.deny: expected addresses or CIDRs such as 10.0.0.0/8, got '" +
                          std::string(item) + "'");
      deny.push_back(*c);
    }
  }
  std::vector<uint16_t> own;
  for (int i = 0; i <= 5; ++i) own.push_back(static_cast<uint16_t>(config.port_base + i));
  std::vector<ip::address> local;
  if (ifaddrs* list = nullptr; getifaddrs(&list) == 0) {
    for (const ifaddrs* i = list; i; i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      if (i->ifa_addr->sa_family == AF_INET) {
        const auto* a = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
        local.push_back(ip::address_v4(ntohl(a->sin_addr.s_addr)));
      } else if (i->ifa_addr->sa_family == AF_INET6) {
        const auto* a = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
        ip::address_v6::bytes_type b;
        std::copy(std::begin(a->sin6_addr.s6_addr), std::end(a->sin6_addr.s6_addr), b.begin());
        local.push_back(ip::address_v6(b));
      }
    }
    freeifaddrs(list);
  }
  return AddressPolicy(std::move(deny), std::move(own), std::move(local));
}

// The IPv4 address an IPv6 one reaches through a translator: NAT64's well-known prefix (64:ff9b::/96, the
// last four bytes) or 6to4 (2002::/16, the next four). A deny list of IPv4 ranges judges that one too.
static std::optional<ip::address_v4> embedded_v4(const ip::address& a) {
  if (!a.is_v6()) return std::nullopt;
  const auto b = a.to_v6().to_bytes();
  static constexpr unsigned char kNat64[12] = {0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
  if (std::equal(std::begin(kNat64), std::end(kNat64), b.begin()))
    return ip::address_v4(ip::address_v4::bytes_type{b[12], b[13], b[14], b[15]});
  if (b[0] == 0x20 && b[1] == 0x02) return ip::address_v4(ip::address_v4::bytes_type{b[2], b[3], b[4], b[5]});
  return std::nullopt;
}

std::optional<std::string> AddressPolicy::refuse(ip::address raw, uint16_t port, bool keel_module) const {
  if (auto v4 = embedded_v4(raw))
    if (auto why = refuse(*v4, port, keel_module)) return raw.to_string() + " reaches " + *why;
  const ip::address a = unmapped(raw);
  for (const auto& c : deny_)
    if (c.contains(a))
      return a.to_string() + " is in " + c.network.to_string() + "/" + std::to_string(c.prefix);
  const bool own_port = std::find(own_ports_.begin(), own_ports_.end(), port) != own_ports_.end();
  if (!keel_module && own_port &&
      (a.is_loopback() || std::find(local_.begin(), local_.end(), a) != local_.end()))
    return "port " + std::to_string(port) + " on this machine is one of keel's own modules";
  return std::nullopt;
}

}  // namespace keel::http
