// keel: one binary, every service. Subcommands are rows of one table.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <optional>

#include "keel/app/serve.hpp"
#include "keel/core/config.hpp"
#include "keel/core/log.hpp"
#include "keel/db/database.hpp"

namespace {

struct Options {
  std::optional<std::string> config;
  keel::SettingMap flags;
};

struct Command {
  const char* name;
  const char* help;
  bool serve_options;  // takes --services, --port-base, --listen, --io-threads
  int (*run)(const keel::Config&);
};

int version_command(const keel::Config&) {
  std::cout << "keel " << KEEL_VERSION << "\n";
  return 0;
}

const Command kCommands[] = {
    {"serve", "Run the selected modules (all by default) until SIGINT or SIGTERM", true, keel::serve},
    {"migrate", "Apply pending database migrations and exit", false, keel::migrate_command},
    {"version", "Print the version", false, version_command},
};

void add_setting(CLI::App* cmd, Options& o, const std::string& flag, const std::string& setting,
                 const std::string& help) {
  cmd->add_option_function<std::string>(
      flag, [&o, setting](const std::string& v) { o.flags[setting] = v; }, help);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"keel: a self-hosted backend platform in one binary", "keel"};
  app.require_subcommand(1);
  Options opts;
  const Command* chosen = nullptr;
  for (const Command& c : kCommands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    sub->add_option_function<std::string>(
        "--config", [&opts](const std::string& v) { opts.config = v; },
        "TOML config file (also KEEL_CONFIG)");
    add_setting(sub, opts, "--data-dir", "data_dir", "Data directory (default ./keel-data)");
    add_setting(sub, opts, "--database", "database", "sqlite:///path/keel.db or postgresql://...");
    if (c.serve_options) {
      add_setting(sub, opts, "--services", "services", "all, or a comma-separated list of modules");
      add_setting(sub, opts, "--port-base", "port_base", "First of the six module ports (default 8000)");
      add_setting(sub, opts, "--listen", "listen", "Address to listen on (default 127.0.0.1)");
      add_setting(sub, opts, "--io-threads", "io_threads", "I/O threads (default: one per core)");
      add_setting(sub, opts, "--log-level", "log_level", "trace, debug, info, warn, error or off");
    }
    sub->callback([&chosen, &c] { chosen = &c; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "keel: " << e.what() << " (see keel --help)\n";
    return 2;
  }

  try {
    const keel::Config config =
        keel::load_config(opts.config ? std::optional<std::filesystem::path>(*opts.config) : std::nullopt,
                          opts.flags, keel::process_environment(), std::filesystem::current_path());
    keel::log::init(config.log_level);
    return chosen->run(config);
  } catch (const keel::ConfigError& e) {
    std::cerr << "keel: " << e.what() << "\n";
    return 2;
  } catch (const keel::db::DbError& e) {
    keel::log::error("database error", {{"error", e.what()}});
    return 1;
  } catch (const std::exception& e) {
    keel::log::error("fatal", {{"error", e.what()}});
    return 1;
  }
}
