#pragma once
// The table of modules: `keel serve --services a,b` starts the named rows, `all` starts every row.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace keel {
struct Config;
namespace db {
class Database;
}
namespace http {
class Router;
}
namespace auth {
class TokenVerifier;
}

struct ModuleContext {
  const Config& config;
  db::Database& db;
  http::Router& router;
  boost::asio::io_context& io;    // for the module's background tasks
  auth::TokenVerifier& verifier;  // checks Bearer tokens on protected routes
};

struct ModuleSpec {
  std::string_view name;
  uint16_t port_offset;  // from --port-base (8000 by default)
  // Adds the module's own routes and background tasks; null while the module serves only the common
  // /health, /health/live and /metrics routes.
  void (*install)(ModuleContext&);
};

const std::vector<ModuleSpec>& module_table();

// Expands and checks a --services list: "all" (or nothing) is every module, in table order. Throws
// ConfigError naming an unknown module.
std::vector<const ModuleSpec*> select_modules(const std::vector<std::string>& names);

}  // namespace keel
