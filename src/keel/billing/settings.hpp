#pragma once
// The [billing] table (KEEL_BILLING_* in the environment): plans and usage retention, declared once.
#include "keel/core/settings.hpp"

namespace keel::billing::settings {

using Kind = ModuleSetting::Kind;
// One of each per plan name: free_requests_per_minute, pro_request_price, ...
inline constexpr ModuleSetting requests_per_minute{
    "billing.*_requests_per_minute",
    Kind::Integer,
    "",
    0,
    1e12,
    "a plan's quota, <plan>_requests_per_minute (0: unlimited; free: 600 unless set)"};
inline constexpr ModuleSetting request_price{
    "billing.*_request_price",
    Kind::Integer,
    "",
    0,
    1e12,
    "a plan's price a request in credits, <plan>_request_price (402 when the balance cannot pay)"};
inline constexpr ModuleSetting usage_raw_minutes{
    "billing.usage_raw_minutes",
    Kind::Integer,
    "5",
    1,
    1440,
    "the meter's usage rows roll up into minutes after this many minutes"};
inline constexpr ModuleSetting usage_minute_days{"billing.usage_minute_days",
                                                 Kind::Integer,
                                                 "2",
                                                 1,
                                                 3650,
                                                 "minutes roll up into hours after this many days"};
inline constexpr ModuleSetting usage_retention_days{"billing.usage_retention_days",
                                                    Kind::Integer,
                                                    "400",
                                                    0,
                                                    36500,
                                                    "hours go after this many days (0: never)"};

inline const SettingTable& table() {
  static const SettingTable t{
      "billing",
      {&requests_per_minute, &request_price, &usage_raw_minutes, &usage_minute_days, &usage_retention_days}};
  return t;
}

}  // namespace keel::billing::settings
