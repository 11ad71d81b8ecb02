#include "keel/http/address_policy.hpp"

#include <gtest/gtest.h>

#include "keel/core/config.hpp"
#include "keel/http/duration.hpp"
#include "keel/http/long_polls.hpp"

using keel::http::AddressPolicy;
using keel::http::Cidr;
namespace ip = boost::asio::ip;

TEST(Cidr, ParsesNetworksAndSingleAddresses) {
  EXPECT_TRUE(Cidr::parse("10.0.0.0/8"));
  EXPECT_TRUE(Cidr::parse("192.0.2.7"));
  EXPECT_TRUE(Cidr::parse("fd00::/8"));
  for (const char* bad :
       {"", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/8x", "example.com", "10.0.0.0/-1"})
    EXPECT_FALSE(Cidr::parse(bad)) << bad;
  const auto net = *Cidr::parse("10.1.0.0/16");
  EXPECT_TRUE(net.contains(ip::make_address("10.1.255.3")));
  EXPECT_FALSE(net.contains(ip::make_address("10.2.0.1")));
  EXPECT_TRUE(net.contains(ip::make_address("::ffff:10.1.0.9")));  // IPv4-mapped is the IPv4 address
  EXPECT_FALSE(net.contains(ip::make_address("::1")));
  // IPv4-mapped networks are the IPv4 networks they map (found by fuzzing: the prefix was left at 128).
  const auto mapped = *Cidr::parse("::ffff:3:f");
  EXPECT_TRUE(mapped.contains(ip::make_address("0.3.0.15")));
  const auto mapped_net = *Cidr::parse("::ffff:10.0.0.0/104");
  EXPECT_TRUE(mapped_net.contains(ip::make_address("10.200.1.1")));
  EXPECT_FALSE(mapped_net.contains(ip::make_address("11.0.0.1")));
  EXPECT_FALSE(Cidr::parse("::ffff:10.0.0.0/64"));
  const auto odd = *Cidr::parse("192.168.0.0/23");  // a prefix that ends inside a byte
  EXPECT_TRUE(odd.contains(ip::make_address("192.168.1.200")));
  EXPECT_FALSE(odd.contains(ip::make_address("192.168.2.1")));
}

TEST(AddressPolicy, RefusesMetadataLinkLocalAndKeelsOwnPortsToThirdParties) {
  const AddressPolicy p({*Cidr::parse("203.0.113.0/24")}, {8000, 8001, 8002, 8003, 8004, 8005});
  for (const char* a :
       {"169.254.169.254", "169.254.0.1", "::ffff:169.254.169.254", "fe80::1", "fd00:ec2::254", "0.0.0.0",
        "::", "224.0.0.1", "ff02::1", "255.255.255.255", "203.0.113.9"})
    EXPECT_TRUE(p.refuse(ip::make_address(a), 80, true)) << a;
  for (const char* a : {"127.0.0.1", "::1", "10.0.0.5", "192.0.2.1", "2001:db8::1"})
    EXPECT_FALSE(p.refuse(ip::make_address(a), 9000, false)) << a;
  EXPECT_TRUE(p.refuse(ip::make_address("127.0.0.1"), 8001, false));
  EXPECT_TRUE(p.refuse(ip::make_address("127.0.0.2"), 8005, false));
  EXPECT_TRUE(p.refuse(ip::make_address("::1"), 8000, false));
  EXPECT_FALSE(p.refuse(ip::make_address("127.0.0.1"), 8001, true));  // keel's own module on its port
  EXPECT_FALSE(p.refuse(ip::make_address("10.0.0.5"), 8001, false));  // another machine's keel port
}

TEST(AddressPolicy, ReadsTheDenyListFromTheConfig) {
  keel::Config c;
  c.port_base = 9100;
  c.module_settings["registry.deny"] = "10.0.0.0/8, 192.0.2.7";
  const auto p = AddressPolicy::from(c);
  EXPECT_TRUE(p.refuse(ip::make_address("10.9.9.9"), 80, true));
  EXPECT_TRUE(p.refuse(ip::make_address("192.0.2.7"), 80, true));
  EXPECT_FALSE(p.refuse(ip::make_address("192.0.2.8"), 80, true));
  EXPECT_TRUE(p.refuse(ip::make_address("127.0.0.1"), 9103, false));
  c.module_settings["registry.deny"] = "10.0.0.0/8,nonsense";
  EXPECT_THROW(AddressPolicy::from(c), keel::ConfigError);
}

TEST(LongPolls, EachCallerHoldsAtMostItsBudget) {
  keel::http::LongPolls polls(2);
  auto a1 = polls.enter("a");
  auto a2 = polls.enter("a");
  try {
    polls.enter("a");
    FAIL() << "a third wait for one caller was let in";
  } catch (const keel::Error& e) {
    EXPECT_EQ(e.status(), 429);
  }
  auto b1 = polls.enter("b");  // another caller's budget is its own
  a1.reset();
  EXPECT_NO_THROW(polls.enter("a"));  // a place came back (and went again with the temporary)
  a2.reset();
  b1.reset();
  EXPECT_EQ(polls.keys(), 0u);  // no entry is kept for a caller with nothing waiting
  keel::http::LongPolls unlimited(0);
  std::vector<std::unique_ptr<keel::http::LongPolls::Slot>> many;
  for (int i = 0; i < 100; ++i) many.push_back(unlimited.enter("a"));
}

TEST(Duration, ALargeCountIsRefusedNotOverflowed) {  // found by fuzzing (UBSan: signed overflow)
  EXPECT_FALSE(keel::http::parse_duration("666666666666666666s", std::chrono::seconds(60)));
  EXPECT_FALSE(keel::http::parse_duration("9223372036854775807m", std::chrono::seconds(60)));
  EXPECT_EQ(keel::http::parse_duration("60s", std::chrono::seconds(60)), std::chrono::milliseconds(60000));
  EXPECT_FALSE(keel::http::parse_duration("61s", std::chrono::seconds(60)));
}

TEST(AddressPolicy, KeelsPortsOnThisMachinesOtherAddressesAreKeels) {
  const AddressPolicy p({}, {8000, 8001}, {ip::make_address("10.0.0.5"), ip::make_address("fd00::5")});
  EXPECT_TRUE(p.refuse(ip::make_address("10.0.0.5"), 8001, false));
  EXPECT_TRUE(p.refuse(ip::make_address("fd00::5"), 8000, false));
  EXPECT_FALSE(p.refuse(ip::make_address("10.0.0.5"), 8001, true));   // keel's own module there
  EXPECT_FALSE(p.refuse(ip::make_address("10.0.0.5"), 9000, false));  // another port on this machine
  EXPECT_FALSE(p.refuse(ip::make_address("10.0.0.6"), 8001, false));  // another machine
}

TEST(AddressPolicy, TranslatedIpv6IsJudgedAsTheIpv4ItReaches) {
  const AddressPolicy p({*Cidr::parse("10.0.0.0/8")}, {8001});
  EXPECT_TRUE(p.refuse(ip::make_address("64:ff9b::a9fe:a9fe"), 80, true));  // NAT64 to 169.254.169.254
  EXPECT_TRUE(p.refuse(ip::make_address("2002:a9fe:a9fe::1"), 80, true));   // 6to4 to 169.254.169.254
  EXPECT_TRUE(p.refuse(ip::make_address("64:ff9b::a00:1"), 80, true));      // NAT64 to 10.0.0.1 (denied)
  EXPECT_TRUE(
      p.refuse(ip::make_address("64:ff9b::7f00:1"), 8001, false));  // NAT64 to keel's port on loopback
  EXPECT_FALSE(p.refuse(ip::make_address("64:ff9b::c000:201"), 80, false));  // NAT64 to 192.0.2.1: allowed
  EXPECT_FALSE(p.refuse(ip::make_address("2001:db8::1"), 80, false));
}
