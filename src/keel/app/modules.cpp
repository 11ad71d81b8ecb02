#include "keel/app/modules.hpp"

#include <algorithm>

#include "keel/auth/routes.hpp"
#include "keel/core/config.hpp"
#include "keel/gateway/routes.hpp"

namespace keel {

const std::vector<ModuleSpec>& module_table() {
  static const std::vector<ModuleSpec> table = {
      {"gateway", 0, gateway::install}, {"auth", 1, auth::install}, {"memory", 2, nullptr},
      {"registry", 3, nullptr},         {"billing", 4, nullptr},    {"events", 5, nullptr},
  };
  return table;
}

std::vector<const ModuleSpec*> select_modules(const std::vector<std::string>& names) {
  const auto& table = module_table();
  const bool all = names.empty() || std::find(names.begin(), names.end(), "all") != names.end();
  for (const auto& n : names) {
    if (n == "all") continue;
    if (std::none_of(table.begin(), table.end(), [&](const ModuleSpec& m) { return m.name == n; })) {
      std::string known;
      for (const auto& m : table) known += (known.empty() ? "" : ", ") + std::string(m.name);
      throw ConfigError("services: unknown module '" + n + "' (known: all, " + known + ")");
    }
  }
  std::vector<const ModuleSpec*> out;
  for (const auto& m : table)
    if (all || std::find(names.begin(), names.end(), m.name) != names.end()) out.push_back(&m);
  return out;
}

}  // namespace keel
