#pragma once
// The table of modules: `keel serve --services a,b` starts the named rows, `all` starts every row.
#include <string>
#include <vector>

#include "keel/module/module.hpp"

namespace keel {

const std::vector<ModuleSpec>& module_table();
// Every table of settings: each module's, and [database]. Their names are the tables KEEL_<TABLE>_* sets.
std::vector<SettingTable> setting_tables();
std::vector<std::string> setting_table_names();
// Every module's routes as it declares them (ModuleSpec::declare, with the common /health, /health/live and
// /metrics), built once: who may call what, for modules that do not run in this process and for the OpenAPI
// document.
const Declarations& declared_routes();

// Expands and checks a --services list: "all" (or nothing) is every module, in table order. Throws
// ConfigError naming an unknown module.
std::vector<const ModuleSpec*> select_modules(const std::vector<std::string>& names);

}  // namespace keel
