#pragma once
// The [gateway] table (KEEL_GATEWAY_* in the environment): every setting the gateway reads, declared once.
#include "keel/core/settings.hpp"

namespace keel::gateway::settings {

using Kind = ModuleSetting::Kind;
inline constexpr ModuleSetting edge_auth{"gateway.edge_auth",
                                         Kind::Boolean,
                                         "true",
                                         0,
                                         0,
                                         "check access tokens at the edge (false: modules check their own)"};
inline constexpr ModuleSetting user_rate{"gateway.user_rate",
                                         Kind::Number,
                                         "200",
                                         0,
                                         1e9,
                                         "requests a second per user (token bucket); 0 turns the limit off"};
inline constexpr ModuleSetting user_burst{"gateway.user_burst",  Kind::Number, "400", 1, 1e9,
                                          "a user's bucket size"};
inline constexpr ModuleSetting ip_rate{"gateway.ip_rate",
                                       Kind::Number,
                                       "500",
                                       0,
                                       1e9,
                                       "requests a second per client address, for requests without a token"};
inline constexpr ModuleSetting ip_burst{"gateway.ip_burst",        Kind::Number, "1000", 1, 1e9,
                                        "an address's bucket size"};
inline constexpr ModuleSetting connect_timeout_ms{
    "gateway.connect_timeout_ms",
    Kind::Integer,
    "1000",
    10,
    60000,
    "name lookup, TCP connect and TLS handshake to an upstream, in milliseconds"};
inline constexpr ModuleSetting upstream_timeout_ms{
    "gateway.upstream_timeout_ms",
    Kind::Integer,
    "30000",
    10,
    3600000,
    "for an answer's head, then for each piece of a streamed body, in milliseconds"};
inline constexpr ModuleSetting cluster_limits{
    "gateway.cluster_limits",
    Kind::Boolean,
    "true",
    0,
    0,
    "on PostgreSQL, rate limits and quotas hold across every gateway on the database"};
inline constexpr ModuleSetting account_stale_ms{
    "gateway.account_stale_ms",
    Kind::Integer,
    "60000",
    0,
    86400000,
    "how old a user's plan and balance may be while the database is unreachable (0: 503 at once)"};
inline constexpr ModuleSetting lease_period_ms{"gateway.lease_period_ms",
                                               Kind::Integer,
                                               "50",
                                               5,
                                               10000,
                                               "how often shared-budget leases are topped up and given back"};
inline constexpr ModuleSetting lease_wait_ms{
    "gateway.lease_wait_ms",
    Kind::Integer,
    "250",
    1,
    10000,
    "how long a request waits for a lease before local limits apply"};

inline const SettingTable& table() {
  static const SettingTable t{
      "gateway",
      {&edge_auth, &user_rate, &user_burst, &ip_rate, &ip_burst, &connect_timeout_ms, &upstream_timeout_ms,
       &cluster_limits, &account_stale_ms, &lease_period_ms, &lease_wait_ms}};
  return t;
}

}  // namespace keel::gateway::settings
