#include "keel/billing/plans.hpp"

#include "keel/billing/settings.hpp"
#include "keel/core/config.hpp"

namespace keel::billing {

Plans Plans::from(const Config& c) {
  Plans p;
  p.by_name["free"] = Plan{600, 0};
  // billing.<plan>_requests_per_minute and billing.<plan>_request_price, one pair per plan.
  for (const auto* s : {&settings::requests_per_minute, &settings::request_price}) {
    const std::string_view suffix = s->name.substr(s->name.find('*') + 1);
    for (const auto& [key, value] : s->given(c)) {
      const std::string plan = key.substr(8, key.size() - 8 - suffix.size());
      (s == &settings::requests_per_minute ? p.by_name[plan].requests_per_minute
                                           : p.by_name[plan].request_price) = s->integer(c, key);
    }
  }
  return p;
}

}  // namespace keel::billing
