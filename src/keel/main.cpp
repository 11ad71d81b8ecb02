// keel: one binary, every service. Subcommands are rows of one table.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

#include "keel/app/modules.hpp"
#include "keel/app/serve.hpp"
#include "keel/app/wiring.hpp"
#include "keel/auth/cli.hpp"
#include "keel/core/config.hpp"
#include "keel/core/log.hpp"
#include "keel/core/settings.hpp"
#include "keel/db/database.hpp"

namespace {

struct Options {
  std::optional<std::string> config;
  keel::SettingMap flags;
  std::string email;
  bool admin = false;
  bool password_stdin = false;
  std::string service;
  long long ttl = 0;
  std::string id;
};

void add_setting(CLI::App* cmd, Options& o, const std::string& flag, const std::string& setting,
                 const std::string& help) {
  cmd->add_option_function<std::string>(
      flag, [&o, setting](const std::string& v) { o.flags[setting] = v; }, help);
}

void serve_options(CLI::App* sub, Options& o) {
  add_setting(sub, o, "--services", "services", "all, or a comma-separated list of modules");
  add_setting(sub, o, "--port-base", "port_base", "First of the six module ports (default 8000)");
  add_setting(sub, o, "--listen", "listen", "Address to listen on (default 127.0.0.1)");
  add_setting(sub, o, "--io-threads", "io_threads", "I/O threads (default: one per core)");
  add_setting(sub, o, "--log-level", "log_level", "trace, debug, info, warn, error or off");
}
void user_create_options(CLI::App* sub, Options& o) {
  sub->add_option("--email", o.email, "The user's email")->required();
  sub->add_flag("--password-stdin", o.password_stdin, "Read the password from standard input")->required();
  sub->add_flag("--admin", o.admin, "Give the user the admin role");
}
void token_create_options(CLI::App* sub, Options& o) {
  sub->add_option("--service", o.service, "The service (module) the token speaks for")->required();
  sub->add_option("--ttl", o.ttl, "Lifetime in seconds (default [auth] service_token_ttl_seconds, 1 year)")
      ->check(CLI::PositiveNumber);
}
void token_revoke_options(CLI::App* sub, Options& o) {
  sub->add_option("--id", o.id, "The token's sid claim")->required();
}

struct Command {
  const char* group;  // a first word ("user"), or nullptr for a top-level command
  const char* name;
  const char* help;
  void (*options)(CLI::App*, Options&);
  int (*run)(const keel::Config&, const Options&);
};

const Command kCommands[] = {
    {nullptr, "serve", "Run the selected modules (all by default) until SIGINT or SIGTERM", serve_options,
     [](const keel::Config& c, const Options&) { return keel::serve(c); }},
    {nullptr, "migrate", "Apply pending database migrations and exit", nullptr,
     [](const keel::Config& c, const Options&) { return keel::migrate_command(c); }},
    {nullptr, "config", "Print the effective configuration, secrets redacted, and exit", nullptr,
     [](const keel::Config& c, const Options&) {
       std::cout << keel::effective_config(c, keel::setting_tables());
       return 0;
     }},
    {nullptr, "version", "Print the version", nullptr,
     [](const keel::Config&, const Options&) {
       std::cout << "keel " << KEEL_VERSION << "\n";
       return 0;
     }},
    {"user", "create", "Create a user (password on standard input)", user_create_options,
     [](const keel::Config& c, const Options& o) {
       const keel::Wiring wiring(c);
       return keel::auth::user_create_command(c, wiring.outbox, wiring.hooks, o.email, o.admin);
     }},
    {"token", "create", "Create a service token and print it", token_create_options,
     [](const keel::Config& c, const Options& o) {
       return keel::auth::token_create_command(c, keel::module_table(), o.service, o.ttl);
     }},
    {"token", "revoke", "Revoke a service token", token_revoke_options,
     [](const keel::Config& c, const Options& o) { return keel::auth::token_revoke_command(c, o.id); }},
    {"keys", "rotate", "Create a new signing key and retire the current one", nullptr,
     [](const keel::Config& c, const Options&) { return keel::auth::keys_rotate_command(c); }},
};

}  // namespace

int main(int argc, char** argv) {
  // Two malloc arenas, not glibc's default of eight per core: with a thread each for I/O, database work,
  // hashing and indexing, every arena kept what its threads had freed, and a soak's RSS climbed for minutes
  // while the memory in use stayed flat (ten minutes: 23.4 -> 45.8 MiB; with two arenas the climb is a third
  // as steep). Small allocations go through each thread's cache and rarely touch an arena. MALLOC_ARENA_MAX
  // in the environment still decides.
  if (!std::getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 2);
  CLI::App app{"keel: a self-hosted backend platform in one binary", "keel"};
  app.require_subcommand(1);
  Options opts;
  const Command* chosen = nullptr;
  std::map<std::string, CLI::App*> groups;
  for (const Command& c : kCommands) {
    CLI::App* parent = &app;
    if (c.group) {
      auto& g = groups[c.group];
      if (!g) {
        g = app.add_subcommand(c.group, std::string("Manage ") + c.group + "s");
        g->require_subcommand(1);
      }
      parent = g;
    }
    CLI::App* sub = parent->add_subcommand(c.name, c.help);
    sub->add_option_function<std::string>(
        "--config", [&opts](const std::string& v) { opts.config = v; },
        "TOML config file (also KEEL_CONFIG)");
    add_setting(sub, opts, "--data-dir", "data_dir", "Data directory (default ./keel-data)");
    add_setting(sub, opts, "--database", "database", "sqlite:///path/keel.db or postgresql://...");
    if (c.options) c.options(sub, opts);
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
    const keel::Config config = keel::load_config(
        opts.config ? std::optional<std::filesystem::path>(*opts.config) : std::nullopt, opts.flags,
        keel::process_environment(), std::filesystem::current_path(), keel::setting_table_names());
    // Every module's settings, whichever command and modules run: an unknown or bad one is exit 2 here.
    keel::check_module_settings(config, keel::setting_tables());
    keel::log::init(config.log_level);
    return chosen->run(config, opts);
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
