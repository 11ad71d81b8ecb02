#include "keel/core/config.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "keel/app/modules.hpp"
#include "keel/core/settings.hpp"
#include "keel/gateway/settings.hpp"
#include "keel/memory/settings.hpp"

namespace fs = std::filesystem;
using keel::Config;
using keel::ConfigError;
using keel::load_config;

namespace {
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("keel-config-test-" + std::to_string(::getpid()) + "-" +
                                        std::to_string(reinterpret_cast<uintptr_t>(this)));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return path / name;
  }
};
}  // namespace

TEST(Config, DefaultsResolveAgainstTheWorkingDirectory) {
  Config c = load_config(std::nullopt, {}, {}, "/srv/app");
  EXPECT_EQ(c.data_dir, fs::path("/srv/app/keel-data"));
  EXPECT_EQ(c.database, "sqlite:///srv/app/keel-data/keel.db");
  EXPECT_EQ(c.port_base, 8000);
  EXPECT_TRUE(c.services.empty());
}

TEST(Config, FlagsOverrideEnvironmentWhichOverridesTheFile) {
  TempDir dir;
  auto file =
      dir.write("keel.toml", "port_base = 9000\nservices = [\"auth\", \"memory\"]\nlog_level = \"warn\"\n");
  Config from_file = load_config(file, {}, {}, "/elsewhere");
  EXPECT_EQ(from_file.port_base, 9000);
  EXPECT_EQ(from_file.services, (std::vector<std::string>{"auth", "memory"}));
  EXPECT_EQ(from_file.log_level, "warn");

  Config from_env = load_config(file, {}, {{"KEEL_PORT_BASE", "9100"}}, "/elsewhere");
  EXPECT_EQ(from_env.port_base, 9100);
  EXPECT_EQ(from_env.log_level, "warn");

  Config from_flag = load_config(file, {{"port_base", "9200"}}, {{"KEEL_PORT_BASE", "9100"}}, "/elsewhere");
  EXPECT_EQ(from_flag.port_base, 9200);
}

TEST(Config, RelativePathsInTheFileResolveAgainstTheFilesDirectory) {
  TempDir dir;
  auto file = dir.write("keel.toml", "data_dir = \"state\"\n");
  Config c = load_config(file, {}, {}, "/somewhere/else");
  EXPECT_EQ(c.data_dir, dir.path / "state");
  EXPECT_EQ(c.database, "sqlite://" + (dir.path / "state" / "keel.db").string());

  auto file2 = dir.write("db.toml", "database = \"sqlite://db/keel.db\"\n");
  Config c2 = load_config(file2, {}, {}, "/somewhere/else");
  EXPECT_EQ(c2.sqlite_path(), dir.path / "db" / "keel.db");
  // Without a config file, relative paths follow the working directory.
  Config c3 = load_config(std::nullopt, {{"data_dir", "d"}}, {}, "/work");
  EXPECT_EQ(c3.data_dir, fs::path("/work/d"));
}

TEST(Config, ConfigFileFromEnvironment) {
  TempDir dir;
  auto file = dir.write("keel.toml", "port_base = 9300\n");
  Config c = load_config(std::nullopt, {}, {{"KEEL_CONFIG", file.string()}}, "/");
  EXPECT_EQ(c.port_base, 9300);
  EXPECT_EQ(c.config_file, file);
}

TEST(Config, ModuleTablesAreKept) {
  TempDir dir;
  auto file = dir.write("keel.toml", "[auth]\naccess_ttl_seconds = 600\n");
  Config c = load_config(file, {}, {}, "/");
  EXPECT_EQ(c.module_settings.at("auth.access_ttl_seconds"), "600");
}

TEST(Config, ModuleSettingsFromTheEnvironmentOverrideTheFile) {
  TempDir dir;
  auto file = dir.write("keel.toml", "[auth]\naccess_ttl_seconds = 600\nissuer = \"me\"\n");
  Config c = load_config(file, {}, {{"KEEL_AUTH_ACCESS_TTL_SECONDS", "60"}, {"KEEL_BIN", "/usr/bin/keel"}},
                         "/", {"auth", "gateway"});
  EXPECT_EQ(c.module_settings.at("auth.access_ttl_seconds"), "60");
  EXPECT_EQ(c.module_settings.at("auth.issuer"), "me");
  EXPECT_EQ(c.module_settings.size(), 2u);  // KEEL_BIN names no table: not a setting
}

namespace {
std::string config_error(const Config& c) {
  try {
    keel::check_module_settings(c, keel::setting_tables());
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

// Each module declares its settings once; a key no module declares, a table that is no module's, or a value
// of the wrong kind or out of range is one line naming it (the command line exits 2 on it).
TEST(Config, ModuleSettingsAreCheckedAgainstTheirDeclarations) {
  TempDir dir;
  auto load = [&](const std::string& toml, const std::map<std::string, std::string>& env = {}) {
    return load_config(dir.write("keel.toml", toml), {}, env, "/", keel::setting_table_names());
  };
  EXPECT_EQ(config_error(load("[memory]\nhnsw_m = 32\n[billing]\npro_request_price = 2\n")), "");
  EXPECT_EQ(config_error(load("[memory]\nhnsw_mm = 32\n"))
                .find("[memory] hnsw_mm: no such setting ([memory] has: "),
            0u);
  EXPECT_NE(config_error(load("[memroy]\nhnsw_m = 32\n")).find("[memroy]: no such table"), std::string::npos);
  EXPECT_NE(config_error(load("[memory]\nhnsw_m = 65\n"))
                .find("[memory] hnsw_m: expected a whole number from 4 to 64"),
            std::string::npos);
  EXPECT_NE(config_error(load("[memory]\nhnsw_m = 8.5\n")).find("whole number"), std::string::npos);
  EXPECT_NE(config_error(load("[gateway]\nedge_auth = \"maybe\"\n"))
                .find("[gateway] edge_auth: expected true or false"),
            std::string::npos);
  EXPECT_NE(
      config_error(load("", {{"KEEL_GATEWAY_USER_RAET", "5"}})).find("[gateway] user_raet: no such setting"),
      std::string::npos);
  EXPECT_NE(config_error(load("[billing]\n_request_price = 2\n")).find("no such setting"), std::string::npos);
  // Values are read through the same declarations: the default, or what was given.
  const Config c = load("[memory]\nhnsw_m = 32\n");
  EXPECT_EQ(keel::memory::settings::hnsw_m.integer(c), 32);
  EXPECT_EQ(keel::memory::settings::hnsw_ef_search.integer(c), 96);
  EXPECT_TRUE(keel::gateway::settings::edge_auth.boolean(c));
}

// `keel config`: every declared setting with its value or default, and no secret.
TEST(Config, TheEffectiveConfigurationRedactsSecrets) {
  TempDir dir;
  const Config c =
      load_config(dir.write("keel.toml",
                            "database = \"postgresql://keel:hunter2@db:5432/keel\"\n"
                            "[auth]\nmaster_key = \"c2VjcmV0LWtleS1zZWNyZXQta2V5LXNlY3JldC1rZXk=\"\n"
                            "[memory]\nhnsw_m = 32\n"),
                  {}, {}, "/", keel::setting_table_names());
  const std::string out = keel::effective_config(c, keel::setting_tables());
  EXPECT_EQ(out.find("hunter2"), std::string::npos) << out;
  EXPECT_EQ(out.find("c2VjcmV0"), std::string::npos) << out;
  EXPECT_NE(out.find("postgresql://keel:***@db:5432/keel"), std::string::npos) << out;
  EXPECT_EQ(keel::redact_url("postgresql://db/keel?user=k&password=hunter2&sslmode=require"),
            "postgresql://db/keel?user=k&password=***&sslmode=require");
  EXPECT_NE(out.find("master_key = \"REDACTED\""), std::string::npos) << out;
  EXPECT_NE(out.find("\n[memory]\n"), std::string::npos) << out;
  EXPECT_NE(out.find("hnsw_m = 32\n"), std::string::npos) << out;
  EXPECT_NE(out.find("hnsw_ef_search = 96  # default"), std::string::npos) << out;
  for (const auto& t : keel::setting_tables())
    for (const auto* s : t.settings)
      EXPECT_NE(out.find(std::string(s->description)), std::string::npos) << s->name;
}

TEST(Config, BadValuesNameTheSetting) {
  TempDir dir;
  auto expect_error = [](auto fn, const std::string& needle) {
    try {
      fn();
      FAIL() << "expected ConfigError mentioning " << needle;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error([] { load_config(std::nullopt, {{"port_base", "abc"}}, {}, "/"); }, "port_base");
  expect_error([] { load_config(std::nullopt, {}, {{"KEEL_PORT_BASE", "70000"}}, "/"); }, "port_base");
  expect_error([] { load_config(std::nullopt, {{"database", "mysql://x"}}, {}, "/"); }, "database");
  expect_error([] { load_config(std::nullopt, {{"log_level", "loud"}}, {}, "/"); }, "log_level");
  auto typo = dir.write("typo.toml", "prot_base = 1\n");
  expect_error([&] { load_config(typo, {}, {}, "/"); }, "prot_base");
  auto broken = dir.write("broken.toml", "port_base = = 1\n");
  expect_error([&] { load_config(broken, {}, {}, "/"); }, "config");
  expect_error([&] { load_config(dir.path / "missing.toml", {}, {}, "/"); }, "no such file");
  // Not UTF-8 (found by fuzzing: toml11 read past its buffer on such bytes), a cut-off sequence, a NUL.
  for (const std::string& bad : {std::string("'po\xff\xffse'=1\n"), std::string("a = \"\xe2\x82\"\n"),
                                 std::string("a = 1\n\0", 7), std::string("a = \"\xed\xa0\x80\"\n")}) {
    auto file = dir.write("bad.toml", bad);
    expect_error([&] { load_config(file, {}, {}, "/"); }, "UTF-8");
  }
  auto good = dir.write("unicode.toml",
                        "public_url = \"https://b\xc3\xbc"
                        "cher.example\"\n");
  EXPECT_EQ(load_config(good, {}, {}, "/").public_url,
            "https://b\xc3\xbc"
            "cher.example");
}
