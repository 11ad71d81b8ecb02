#pragma once
// The module contract: what a module is (ModuleSpec) and what it is given when it is installed
// (ModuleContext). Every module builds on this layer and on nothing of another module's: what one module
// needs of another is an interface declared here (module/*.hpp), which app/ binds to the module that
// implements it.
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel {
struct Config;
struct SettingTable;
namespace db {
class Database;
}
namespace http {
class Router;
class HttpMetrics;
}  // namespace http
namespace module {
class Authenticator;
class RegistryView;
class Accounts;
class Outbox;
struct Hooks;
}  // namespace module

struct ModuleSpec;

// Module name -> a router describing its routes (handlers never called).
using Declarations = std::vector<std::pair<std::string, std::shared_ptr<const http::Router>>>;

struct ModuleContext {
  const Config& config;
  db::Database& db;
  http::Router& router;
  const http::HttpMetrics& metrics;  // what the module's listener served (its /metrics)
  boost::asio::io_context& io;       // for the module's background tasks
  // The interfaces between modules (app/wiring.hpp binds each to its module).
  module::Authenticator& authenticator;  // Bearer tokens (auth's verifier)
  module::RegistryView& registry;        // the registered instances and their index (the registry's)
  module::Accounts& accounts;            // accounts, plans and metered usage (billing's)
  const module::Outbox& outbox;          // the events a module's transactions append (read by events)
  const module::Hooks& hooks;            // lifecycle hooks modules join ("user created", ...)
  // keel's modules (app/modules.hpp, module_table): their names and prefixes are reserved.
  const std::vector<ModuleSpec>& modules;
  // Modules running in this process, and the routers serving them (the gateway dispatches to them).
  std::vector<std::pair<std::string, std::shared_ptr<http::Router>>>& local_routers;
  // Every keel module's routes as declared, wherever it runs (declared_routes()).
  const Declarations& declared;
  // Set by a module with series of its own to add to its /metrics (Prometheus text lines).
  std::function<void(std::string&)> extra_metrics = {};
  // Set by a module with more to say in its /health: members of the JSON object ("\"modules\":{...}").
  std::function<std::string()> extra_health = {};
  // Lifecycle: once every module of the process is installed and registered, before serving; at SIGTERM,
  // before serving drains (what holds a connection open, a stream, ends it); and once serving has drained,
  // before the process deregisters and closes the database.
  std::function<void()> on_started = {};
  std::function<void()> on_stopping = {};
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

namespace module {

// The module of `modules` named `name`, or null.
const ModuleSpec* named(const std::vector<ModuleSpec>& modules, std::string_view name);
// True when `path` is `prefix` or below it ("/v1/auth" covers "/v1/auth/me", not "/v1/authx").
bool path_under(std::string_view path, std::string_view prefix);
// Paths no registration may claim, at, below or above them: `/`, health, metrics, the OpenAPI document,
// `/.well-known`, `/admin`, `/v1/stream` (keel's modules' own prefixes are in the table).
const std::vector<std::string>& reserved_paths();
// The tables of settings of `modules`, then the database's ([database]): all a config file may hold.
std::vector<SettingTable> setting_tables(const std::vector<ModuleSpec>& modules);

}  // namespace module
}  // namespace keel
