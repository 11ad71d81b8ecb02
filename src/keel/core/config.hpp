#pragma once
// keel's configuration: defaults, then the TOML file, then KEEL_* environment variables, then flags.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel {

// A bad option or config value; its message names the setting. The command line exits 2 on it.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Config {
  std::filesystem::path config_file;  // empty when none was given
  std::filesystem::path data_dir;     // absolute
  std::string database;               // sqlite:///abs/path or postgresql://...
  int port_base = 8000;
  std::vector<std::string> services;  // module names, in table order; "all" is expanded by the caller
  std::string listen = "127.0.0.1";
  int io_threads = 0;  // 0: one per core
  int db_workers = 0;  // 0: chosen by the backend
  std::string log_level = "info";
  bool access_log = true;
  size_t body_limit = 1 << 20;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  int max_connections = 10000;
  int max_connections_per_ip = 1000;
  int long_polls_per_caller = 64;  // waiting requests one token may hold per module and process (0: no cap)
                                   // // 0: no cap (behind a proxy, whose address every client shares)
  std::chrono::milliseconds shutdown_grace{10000};
  std::string sqlite_synchronous = "NORMAL";
  // Reads map this much of the database file instead of copying pages through read(2); 0 (the default) is
  // off: on this machine mapping raised search p99 from about 5 ms to 14-17 ms.
  int64_t sqlite_mmap_mib = 0;
  int64_t sqlite_cache_mib = 8;  // the page caches of all SQLite connections together
  // Where clients reach keel (the gateway, or a proxy in front of it), as http(s)://host[:port][/path] with
  // no trailing slash; issuer metadata builds its URLs from it, never from a request's Host. Empty: the
  // gateway on this machine, http://localhost:<port_base>.
  std::string public_url;
  // Module tables ([auth], [gateway], ...) as flattened "module.key" -> string value, checked against each
  // module's declared settings (core/settings.hpp) before anything opens.
  std::map<std::string, std::string> module_settings;

  bool is_sqlite() const { return database.rfind("sqlite:", 0) == 0; }
  std::string public_base() const {
    return public_url.empty() ? "http://localhost:" + std::to_string(port_base) : public_url;
  }
  std::filesystem::path sqlite_path() const;
};

// Raw settings as given on the command line (only those the user actually passed).
using SettingMap = std::map<std::string, std::string>;

// Builds the configuration. `flags` and `env` use setting names ("data_dir", "port_base", ...); `env` is the
// process environment (KEEL_DATA_DIR=...), passed in so tests can inject it. `cwd` resolves relative paths
// that came from flags or the environment; those from the file resolve against the file's directory.
// `tables` names the tables of module settings ("auth", ...: app/modules.hpp, setting_tables) that
// KEEL_<TABLE>_* variables set; their keys are checked against the modules' declarations later
// (core/settings.hpp).
Config load_config(const std::optional<std::filesystem::path>& config_file, const SettingMap& flags,
                   const std::map<std::string, std::string>& env, const std::filesystem::path& cwd,
                   const std::vector<std::string>& tables = {});

// A database URL without its password (in the user part or a password= parameter), for logs and `keel
// config`.
std::string redact_url(const std::string& url);

// Reads KEEL_* variables from the process environment into a map keyed by variable name.
std::map<std::string, std::string> process_environment();

}  // namespace keel
