#include "keel/billing/plans.hpp"

#include "keel/core/config.hpp"

namespace keel::billing {

Plans Plans::from(const Config& c) {
  Plans p;
  p.by_name["free"] = Plan{600, 0};
  constexpr std::string_view kRate = "_requests_per_minute", kPrice = "_request_price";
  for (const auto& [key, value] : c.module_settings) {
    if (key.rfind("billing.", 0) != 0) continue;
    const std::string name = key.substr(8);
    for (auto suffix : {kRate, kPrice}) {
      if (name.size() <= suffix.size() ||
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0)
        continue;
      const std::string plan = name.substr(0, name.size() - suffix.size());
      const auto v = static_cast<int64_t>(module_number(c, key, 0, 0, 1e12));
      (suffix == kRate ? p.by_name[plan].requests_per_minute : p.by_name[plan].request_price) = v;
    }
  }
  return p;
}

}  // namespace keel::billing
