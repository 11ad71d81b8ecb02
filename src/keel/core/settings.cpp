#include "keel/core/settings.hpp"

#include <charconv>
#include <cstdio>
#include <set>

#include "keel/core/config.hpp"

namespace keel {

namespace {

// "memory.hnsw_m" -> "[memory] hnsw_m", as the config file writes it.
std::string display(std::string_view key) {
  const auto dot = key.find('.');
  if (dot == std::string_view::npos) return std::string(key);
  return "[" + std::string(key.substr(0, dot)) + "] " + std::string(key.substr(dot + 1));
}

// Glob with one kind of wildcard: '*' matches one or more characters.
bool glob(std::string_view pattern, std::string_view s) {
  const auto star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == s;
  const auto head = pattern.substr(0, star), tail = pattern.substr(star + 1);
  return s.size() > head.size() + tail.size() && s.substr(0, head.size()) == head &&
         s.substr(s.size() - tail.size()) == tail && tail.find('*') == std::string_view::npos;
}

double parse_number(const std::string& key, const std::string& v, const ModuleSetting& s) {
  double out = 0;
  const auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  const bool whole =
      s.kind != ModuleSetting::Kind::Integer || out == static_cast<double>(static_cast<int64_t>(out));
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || out < s.lo || out > s.hi || !whole) {
    char range[112];
    std::snprintf(range, sizeof range, "%s from %.15g to %.15g",
                  s.kind == ModuleSetting::Kind::Integer ? "a whole number" : "a number", s.lo, s.hi);
    throw ConfigError(display(key) + ": expected " + range + ", got '" + v + "'");
  }
  return out;
}

bool parse_boolean(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw ConfigError(display(key) + ": expected true or false, got '" + v + "'");
}

// The value given for `key`, else nullptr.
const std::string* given_value(const Config& c, std::string_view key) {
  const auto it = c.module_settings.find(std::string(key));
  return it == c.module_settings.end() ? nullptr : &it->second;
}

}  // namespace

bool ModuleSetting::matches(std::string_view key) const { return glob(name, key); }

void ModuleSetting::check(const std::string& key, const std::string& value) const {
  switch (kind) {
    case Kind::Integer:
    case Kind::Number:
      (void)parse_number(key, value, *this);
      break;
    case Kind::Boolean:
      (void)parse_boolean(key, value);
      break;
    case Kind::Text:
      break;
  }
}

double ModuleSetting::number(const Config& c) const {
  const std::string* v = given_value(c, name);
  const std::string value = v ? *v : std::string(fallback);
  return value.empty() ? 0 : parse_number(std::string(name), value, *this);
}

int64_t ModuleSetting::integer(const Config& c) const { return static_cast<int64_t>(number(c)); }

int64_t ModuleSetting::integer(const Config& c, const std::string& key) const {
  const std::string* v = given_value(c, key);
  const std::string value = v ? *v : std::string(fallback);
  return value.empty() ? 0 : static_cast<int64_t>(parse_number(key, value, *this));
}

bool ModuleSetting::boolean(const Config& c) const {
  const std::string* v = given_value(c, name);
  return parse_boolean(std::string(name), v ? *v : std::string(fallback));
}

std::string ModuleSetting::text(const Config& c) const {
  const std::string* v = given_value(c, name);
  return v ? *v : std::string(fallback);
}

std::vector<std::pair<std::string, std::string>> ModuleSetting::given(const Config& c) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, value] : c.module_settings)
    if (matches(key)) out.emplace_back(key, value);
  return out;
}

void check_module_settings(const Config& config, const std::vector<SettingTable>& tables) {
  for (const auto& [key, value] : config.module_settings) {
    const auto dot = key.find('.');
    const std::string_view table = std::string_view(key).substr(0, dot);
    const SettingTable* t = nullptr;
    for (const auto& candidate : tables)
      if (candidate.table == table) t = &candidate;
    if (!t) {
      std::string known;
      for (const auto& candidate : tables)
        known += (known.empty() ? "" : ", ") + std::string(candidate.table);
      throw ConfigError("[" + std::string(table) + "]: no such table of settings (there are: " + known + ")");
    }
    const ModuleSetting* s = nullptr;
    for (const ModuleSetting* candidate : t->settings)
      if (candidate->matches(key)) s = candidate;
    if (!s) {
      std::string known;
      for (const ModuleSetting* candidate : t->settings)
        known +=
            (known.empty() ? "" : ", ") + std::string(candidate->name.substr(candidate->name.find('.') + 1));
      throw ConfigError(display(key) + ": no such setting ([" + std::string(table) + "] has: " + known + ")");
    }
    s->check(key, value);
  }
}

namespace {
std::string quoted(const std::string& v) {
  std::string out = "\"";
  for (char ch : v) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

std::string toml_value(const ModuleSetting& s, const std::string& v) {
  return s.kind == ModuleSetting::Kind::Text ? quoted(v) : v;
}
}  // namespace

std::string effective_config(const Config& c, const std::vector<SettingTable>& tables) {
  std::string out = "# keel's effective configuration: defaults, then " +
                    (c.config_file.empty() ? std::string("(no config file)") : c.config_file.string()) +
                    ", then KEEL_* variables, then flags. Secrets are redacted.\n";
  std::string services;
  for (const auto& s : c.services) services += (services.empty() ? "" : ",") + s;
  const std::pair<const char*, std::string> top[] = {
      {"data_dir", quoted(c.data_dir.string())},
      {"database", quoted(redact_url(c.database))},
      {"port_base", std::to_string(c.port_base)},
      {"services", quoted(services.empty() ? "all" : services)},
      {"listen", quoted(c.listen)},
      {"public_url", quoted(c.public_base())},
      {"io_threads", std::to_string(c.io_threads)},
      {"db_workers", std::to_string(c.db_workers)},
      {"log_level", quoted(c.log_level)},
      {"access_log", c.access_log ? "true" : "false"},
      {"body_limit", std::to_string(c.body_limit)},
      {"header_timeout_ms", std::to_string(c.header_timeout.count())},
      {"body_timeout_ms", std::to_string(c.body_timeout.count())},
      {"max_connections", std::to_string(c.max_connections)},
      {"max_connections_per_ip", std::to_string(c.max_connections_per_ip)},
      {"long_polls_per_caller", std::to_string(c.long_polls_per_caller)},
      {"shutdown_grace_ms", std::to_string(c.shutdown_grace.count())},
      {"sqlite_synchronous", quoted(c.sqlite_synchronous)},
      {"sqlite_cache_mib", std::to_string(c.sqlite_cache_mib)},
      {"sqlite_mmap_mib", std::to_string(c.sqlite_mmap_mib)},
  };
  for (const auto& [name, value] : top) out += std::string(name) + " = " + value + "\n";
  for (const auto& t : tables) {
    out += "\n[" + std::string(t.table) + "]\n";
    for (const ModuleSetting* s : t.settings) {
      const std::string key = std::string(s->name.substr(s->name.find('.') + 1));
      out += "# " + std::string(s->description) + "\n";
      if (s->name.find('*') != std::string_view::npos) {
        for (const auto& [given_key, value] : s->given(c))
          out += given_key.substr(given_key.find('.') + 1) + " = " +
                 (s->secret ? "\"REDACTED\"" : toml_value(*s, value)) + "\n";
        continue;
      }
      const std::string* v = given_value(c, s->name);
      if (v)
        out += key + " = " + (s->secret ? "\"REDACTED\"" : toml_value(*s, *v)) + "\n";
      else if (!s->fallback.empty())
        out += key + " = " + toml_value(*s, std::string(s->fallback)) + "  # default\n";
      else
        out += "# " + key + " is not set\n";
    }
  }
  return out;
}

}  // namespace keel
