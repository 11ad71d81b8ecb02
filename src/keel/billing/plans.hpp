#pragma once
// Plans and their quotas, from the [billing] table: <plan>_requests_per_minute (0: unlimited) and
// <plan>_request_price (credits per request; 0: free). The default plan "free" allows 600 requests a minute.
#include <cstdint>
#include <map>
#include <string>

#include "keel/module/accounts.hpp"

namespace keel {
struct Config;
}

namespace keel::billing {

using Plan = module::Plan;

struct Plans {
  std::map<std::string, Plan> by_name;
  const Plan* find(const std::string& name) const {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : &it->second;
  }
  static Plans from(const Config& config);
};

}  // namespace keel::billing
