#include "keel/core/config.hpp"

#include <gtest/gtest.h>

#include <fstream>

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
  Config c = load_config(file, {}, {{"KEEL_AUTH_ACCESS_TTL_SECONDS", "60"}}, "/");
  EXPECT_EQ(c.module_settings.at("auth.access_ttl_seconds"), "60");
  EXPECT_EQ(c.module_settings.at("auth.issuer"), "me");
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
