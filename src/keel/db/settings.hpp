#pragma once
// The [database] table (KEEL_DATABASE_<NAME> in the environment; KEEL_DATABASE alone is the URL), declared
// once. All but queue_timeout_ms concern PostgreSQL.
#include "keel/core/settings.hpp"

namespace keel::db::settings {

using Kind = ModuleSetting::Kind;
inline constexpr ModuleSetting connect_timeout_s{"database.connect_timeout_s",
                                                 Kind::Integer,
                                                 "2",
                                                 2,
                                                 600,
                                                 "PostgreSQL connect timeout (libpq's floor is 2 s)"};
inline constexpr ModuleSetting statement_timeout_ms{
    "database.statement_timeout_ms",
    Kind::Integer,
    "5000",
    0,
    86400000,
    "a statement running longer is cancelled (503); 0: none (migrations always run without one)"};
inline constexpr ModuleSetting tcp_user_timeout_ms{
    "database.tcp_user_timeout_ms",
    Kind::Integer,
    "3000",
    0,
    3600000,
    "sent data unacknowledged this long: the connection is dead"};
inline constexpr ModuleSetting keepalive_idle_s{"database.keepalive_idle_s",
                                                Kind::Integer,
                                                "1",
                                                1,
                                                7200,
                                                "while waiting for an answer: probe after this much silence"};
inline constexpr ModuleSetting keepalive_interval_s{
    "database.keepalive_interval_s", Kind::Integer, "1", 1, 600, "then probe every this many seconds"};
inline constexpr ModuleSetting keepalive_count{
    "database.keepalive_count", Kind::Integer, "3", 1, 100, "and give up after this many unanswered probes"};
inline constexpr ModuleSetting idle_in_transaction_ms{
    "database.idle_in_transaction_ms",
    Kind::Integer,
    "10000",
    0,
    86400000,
    "the server ends a transaction whose client went silent this long"};
inline constexpr ModuleSetting retry_after_ms{
    "database.retry_after_ms",
    Kind::Integer,
    "250",
    10,
    60000,
    "while unreachable: one probe per period, other calls fail at once"};
inline constexpr ModuleSetting queue_timeout_ms{
    "database.queue_timeout_ms",
    Kind::Integer,
    "5000",
    10,
    600000,
    "(both backends) a call waiting this long for a worker fails with 503"};

inline const SettingTable& table() {
  static const SettingTable t{
      "database",
      {&connect_timeout_s, &statement_timeout_ms, &tcp_user_timeout_ms, &keepalive_idle_s,
       &keepalive_interval_s, &keepalive_count, &idle_in_transaction_ms, &retry_after_ms, &queue_timeout_ms}};
  return t;
}

}  // namespace keel::db::settings
