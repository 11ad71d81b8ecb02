#pragma once
// The table of modules: `keel serve --services a,b` starts the named rows, `all` starts every row.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace keel {
struct Config;
struct SettingTable;
namespace db {
class Database;
}
namespace http {
class Router;
}
namespace auth {
class TokenVerifier;
}
namespace registry {
class IndexWatch;
}

// Module name -> a router describing its routes (handlers never called).
using Declarations = std::vector<std::pair<std::string, std::shared_ptr<const http::Router>>>;

struct ModuleContext {
  const Config& config;
  db::Database& db;
  http::Router& router;
  boost::asio::io_context& io;    // for the module's background tasks
  auth::TokenVerifier& verifier;  // checks Bearer tokens on protected routes
  registry::IndexWatch& registry_index;
  // Modules running in this process, and the routers serving them (the gateway dispatches to them).
  std::vector<std::pair<std::string, std::shared_ptr<http::Router>>>& local_routers;
  // Every keel module's routes as declared, wherever it runs (declared_routes()).
  const Declarations& declared;
  // Set by a module with series of its own to add to its /metrics (Prometheus text lines).
  std::function<void(std::string&)> extra_metrics = {};
  // Set by a module with more to say in its /health: members of the JSON object ("\"modules\":{...}").
  std::function<std::string()> extra_health = {};
  // Lifecycle: once every module of the process is installed and registered, before serving; and once
  // serving has drained, before the process deregisters and closes the database.
  std::function<void()> on_started = {};
  std::function<void()> on_drained = {};
};

struct ModuleSpec {
  std::string_view name;
  uint16_t port_offset;  // from --port-base (8000 by default)
  // The path prefixes the module owns; the registry refuses them to anyone else, the gateway routes them.
  std::vector<std::string> routes;
  // Adds the module's own routes and background tasks; null while the module serves only the common
  // /health, /health/live and /metrics routes.
  void (*install)(ModuleContext&);
  // Adds the module's routes, with who may call each, to a router that only describes them.
  void (*declare)(http::Router&);
  // The module's table of settings ([auth], ...), declared where the module keeps them.
  const SettingTable& (*settings)();
};

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
// True for the name of one of keel's own modules (reserved: CONTRACT.md, "Safety rules").
bool keel_owner_name(std::string_view name);
// Paths no registration may claim, at, below or above them: `/`, health, metrics, the OpenAPI document,
// `/.well-known`, `/admin`, `/v1/stream` (keel's modules' own prefixes are in the table).
const std::vector<std::string>& reserved_paths();
// The keel module that owns `prefix` (or a prefix above it), if any.
const ModuleSpec* keel_owner_of(std::string_view prefix);
// True when `path` is `prefix` or below it ("/v1/auth" covers "/v1/auth/me", not "/v1/authx").
bool path_under(std::string_view path, std::string_view prefix);

}  // namespace keel
