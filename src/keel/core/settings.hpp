#pragma once
// Module settings ([auth] access_ttl_seconds = 600 in the config file, KEEL_AUTH_ACCESS_TTL_SECONDS in the
// environment). Each is declared once, where its module keeps its settings, as a ModuleSetting: name, kind,
// default, range and description. Modules read their values through the declaration; before anything opens,
// keel checks every key given in a module's table against its module's declarations (an unknown key, or a
// value of the wrong kind or out of range, is a one-line error and exit 2); `keel config` prints them all.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keel {

struct Config;

struct ModuleSetting {
  enum class Kind { Integer, Number, Boolean, Text };
  // "memory.hnsw_m": the table, a dot, the key. A '*' in the key stands for one or more characters of a name
  // ("billing.*_request_price": one setting per plan).
  std::string_view name;
  Kind kind;
  std::string_view fallback;  // the default, as the config file would write it; empty: none
  double lo = 0, hi = 0;      // the range of an Integer or a Number
  std::string_view description;
  bool secret = false;  // `keel config` never prints its value

  bool matches(std::string_view key) const;
  // The value given for the setting (or, for a '*' setting, for `key`), else the default. A value of the
  // wrong kind or out of range is a ConfigError naming the setting.
  int64_t integer(const Config& c) const;
  double number(const Config& c) const;
  bool boolean(const Config& c) const;
  std::string text(const Config& c) const;
  int64_t integer(const Config& c, const std::string& key) const;
  // The keys a '*' setting was given under, with their values ({"billing.pro_request_price", "2"}).
  std::vector<std::pair<std::string, std::string>> given(const Config& c) const;
  // Throws a ConfigError naming `key` unless `value` is of this setting's kind and in its range.
  void check(const std::string& key, const std::string& value) const;
};

// A module's table of settings: its name ("memory") and its declarations.
struct SettingTable {
  std::string_view table;
  std::vector<const ModuleSetting*> settings;
};

// Every key given in `config`'s module tables names a declared setting of that table and holds a valid value;
// otherwise a ConfigError naming it: "[memory] hnsw_mm: no such setting (memory has: ...)".
void check_module_settings(const Config& config, const std::vector<SettingTable>& tables);

// The effective configuration as TOML: the top-level settings, then each table with every declared setting's
// value (given, or its default as a comment), with secrets, and a database URL's password, redacted.
std::string effective_config(const Config& config, const std::vector<SettingTable>& tables);

}  // namespace keel
