#include "keel/module/module.hpp"

#include "keel/core/settings.hpp"
#include "keel/db/settings.hpp"

namespace keel::module {

const ModuleSpec* named(const std::vector<ModuleSpec>& modules, std::string_view name) {
  for (const auto& m : modules)
    if (m.name == name) return &m;
  return nullptr;
}

bool path_under(std::string_view path, std::string_view prefix) {
  if (prefix == "/") return true;
  while (prefix.size() > 1 && prefix.back() == '/') prefix.remove_suffix(1);
  return path.substr(0, prefix.size()) == prefix &&
         (path.size() == prefix.size() || path[prefix.size()] == '/');
}

const std::vector<std::string>& reserved_paths() {
  static const std::vector<std::string> paths = {
      "/", "/health", "/metrics", "/openapi.json", "/.well-known", "/admin", "/v1/stream"};
  return paths;
}

std::vector<SettingTable> setting_tables(const std::vector<ModuleSpec>& modules) {
  std::vector<SettingTable> out;
  for (const auto& m : modules) out.push_back(m.settings());
  out.push_back(db::settings::table());
  return out;
}

}  // namespace keel::module
