#include "keel/app/modules.hpp"

#include <algorithm>

#include "keel/app/health.hpp"
#include "keel/auth/routes.hpp"
#include "keel/auth/settings.hpp"
#include "keel/billing/routes.hpp"
#include "keel/billing/settings.hpp"
#include "keel/core/config.hpp"
#include "keel/events/routes.hpp"
#include "keel/events/settings.hpp"
#include "keel/gateway/routes.hpp"
#include "keel/gateway/settings.hpp"
#include "keel/http/router.hpp"
#include "keel/memory/routes.hpp"
#include "keel/memory/settings.hpp"
#include "keel/registry/routes.hpp"
#include "keel/registry/settings.hpp"

namespace keel {

const std::vector<ModuleSpec>& module_table() {
  static const std::vector<ModuleSpec> table = {
      {"gateway",
       0,
       {"/openapi.json", "/admin", "/v1/gateway"},
       gateway::install,
       gateway::declare,
       gateway::settings::table},
      {"auth", 1, {"/v1/auth", "/.well-known"}, auth::install, auth::declare, auth::settings::table},
      {"memory", 2, {"/v1/memories"}, memory::install, memory::declare, memory::settings::table},
      {"registry", 3, {"/v1/registry"}, registry::install, registry::declare, registry::settings::table},
      {"billing", 4, {"/v1/billing"}, billing::install, billing::declare, billing::settings::table},
      {"events", 5, {"/v1/events", "/v1/stream"}, events::install, events::declare, events::settings::table},
  };
  return table;
}

std::vector<SettingTable> setting_tables() { return module::setting_tables(module_table()); }

std::vector<std::string> setting_table_names() {
  std::vector<std::string> out;
  for (const auto& t : setting_tables()) out.emplace_back(t.table);
  return out;
}

const Declarations& declared_routes() {
  static const Declarations routers = [] {
    Declarations out;
    for (const auto& m : module_table()) {
      auto r = std::make_shared<http::Router>();
      m.declare(*r);
      declare_common_routes(*r);
      out.emplace_back(std::string(m.name), std::move(r));
    }
    return out;
  }();
  return routers;
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
