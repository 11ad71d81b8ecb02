#include "keel/core/config.hpp"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <functional>
#include <iterator>
#include <regex>
#include <sstream>
#include <toml.hpp>

extern char** environ;

namespace keel {

namespace fs = std::filesystem;

namespace {

enum class Source { File, Env, Flag };

struct Setting {
  const char* name;
  std::function<void(Config&, const std::string&, const fs::path& base)> apply;
};

int parse_int(const std::string& name, const std::string& v, int lo, int hi) {
  int out = 0;
  auto r = std::from_chars(v.data(), v.data() + v.size(), out);
  if (r.ec != std::errc() || r.ptr != v.data() + v.size() || out < lo || out > hi)
    throw ConfigError(name + ": expected an integer from " + std::to_string(lo) + " to " +
                      std::to_string(hi) + ", got '" + v + "'");
  return out;
}

bool parse_bool(const std::string& name, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  throw ConfigError(name + ": expected true or false, got '" + v + "'");
}

fs::path resolve(const fs::path& base, const std::string& p) {
  fs::path path(p);
  return (path.is_absolute() ? path : base / path).lexically_normal();
}

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= v.size()) {
    size_t comma = v.find(',', start);
    if (comma == std::string::npos) comma = v.size();
    std::string item = v.substr(start, comma - start);
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (!item.empty()) out.push_back(item);
    start = comma + 1;
  }
  return out;
}

// Well-formed UTF-8 without NUL: no overlong forms, surrogates or code points past U+10FFFF.
bool utf8_text(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == 0) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (s.size() - i <= n) return false;  // the sequence is cut off
    for (size_t k = 1; k <= n; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n + 1;
  }
  return true;
}

const std::vector<Setting>& settings() {
  static const std::vector<Setting> table = {
      {"data_dir", [](Config& c, const std::string& v, const fs::path& b) { c.data_dir = resolve(b, v); }},
      {"database",
       [](Config& c, const std::string& v, const fs::path& b) {
         if (v.rfind("sqlite:", 0) == 0) {
           std::string rest = v.substr(7);
           if (rest.rfind("//", 0) == 0) rest = rest.substr(2);
           if (rest.empty()) throw ConfigError("database: sqlite URL has no path: '" + v + "'");
           c.database = "sqlite://" + resolve(b, rest).string();
         } else if (v.rfind("postgresql://", 0) == 0 || v.rfind("postgres://", 0) == 0) {
           c.database = v;
         } else {
           throw ConfigError(
               "database: expected sqlite:///path or postgresql://..., got a URL of another scheme");
         }
       }},
      {"port_base", [](Config& c, const std::string& v,
                       const fs::path&) { c.port_base = parse_int("port_base", v, 1, 65530); }},
      {"services", [](Config& c, const std::string& v, const fs::path&) { c.services = split_list(v); }},
      {"listen", [](Config& c, const std::string& v, const fs::path&) { c.listen = v; }},
      {"public_url",
       [](Config& c, const std::string& v, const fs::path&) {
         std::string u = v;
         while (!u.empty() && u.back() == '/') u.pop_back();
         const size_t host = u.rfind("https://", 0) == 0 ? 8 : u.rfind("http://", 0) == 0 ? 7 : 0;
         if (host == 0 || u.size() == host || u[host] == '/' || u[host] == ':' ||
             u.find_first_of(" \t\r\n\"<>\\?#@", host) != std::string::npos)
           throw ConfigError(
               "public_url: expected http(s)://host[:port][/path] (no query, fragment or user), got '" + v +
               "'");
         c.public_url = u;
       }},
      {"io_threads", [](Config& c, const std::string& v,
                        const fs::path&) { c.io_threads = parse_int("io_threads", v, 0, 256); }},
      {"db_workers", [](Config& c, const std::string& v,
                        const fs::path&) { c.db_workers = parse_int("db_workers", v, 0, 256); }},
      {"log_level",
       [](Config& c, const std::string& v, const fs::path&) {
         static const char* levels[] = {"trace", "debug", "info", "warn", "error", "off"};
         if (std::find(std::begin(levels), std::end(levels), v) == std::end(levels))
           throw ConfigError("log_level: expected trace, debug, info, warn, error or off, got '" + v + "'");
         c.log_level = v;
       }},
      {"access_log",
       [](Config& c, const std::string& v, const fs::path&) { c.access_log = parse_bool("access_log", v); }},
      {"body_limit",
       [](Config& c, const std::string& v, const fs::path&) {
         c.body_limit = static_cast<size_t>(parse_int("body_limit", v, 1024, 1 << 30));
       }},
      {"header_timeout_ms",
       [](Config& c, const std::string& v, const fs::path&) {
         c.header_timeout = std::chrono::milliseconds(parse_int("header_timeout_ms", v, 100, 600000));
       }},
      {"body_timeout_ms",
       [](Config& c, const std::string& v, const fs::path&) {
         c.body_timeout = std::chrono::milliseconds(parse_int("body_timeout_ms", v, 100, 3600000));
       }},
      {"max_connections",
       [](Config& c, const std::string& v, const fs::path&) {
         c.max_connections = parse_int("max_connections", v, 1, 1000000);
       }},
      {"max_connections_per_ip",
       [](Config& c, const std::string& v, const fs::path&) {
         c.max_connections_per_ip = parse_int("max_connections_per_ip", v, 0, 1000000);
       }},
      {"long_polls_per_caller",
       [](Config& c, const std::string& v, const fs::path&) {
         c.long_polls_per_caller = parse_int("long_polls_per_caller", v, 0, 1000000);
       }},
      {"shutdown_grace_ms",
       [](Config& c, const std::string& v, const fs::path&) {
         c.shutdown_grace = std::chrono::milliseconds(parse_int("shutdown_grace_ms", v, 0, 600000));
       }},
      {"sqlite_synchronous",
       [](Config& c, const std::string& v, const fs::path&) {
         std::string u = v;
         std::transform(u.begin(), u.end(), u.begin(), ::toupper);
         if (u != "OFF" && u != "NORMAL" && u != "FULL" && u != "EXTRA")
           throw ConfigError("sqlite_synchronous: expected OFF, NORMAL, FULL or EXTRA, got '" + v + "'");
         c.sqlite_synchronous = u;
       }},
      {"sqlite_cache_mib",
       [](Config& c, const std::string& v, const fs::path&) {
         c.sqlite_cache_mib = parse_int("sqlite_cache_mib", v, 1, 1 << 20);
       }},
      {"sqlite_mmap_mib",
       [](Config& c, const std::string& v, const fs::path&) {
         c.sqlite_mmap_mib = parse_int("sqlite_mmap_mib", v, 0, 1 << 20);
       }},
  };
  return table;
}

const Setting* find_setting(const std::string& name) {
  for (const auto& s : settings())
    if (name == s.name) return &s;
  return nullptr;
}

std::string toml_scalar(const std::string& key, const toml::value& v) {
  if (v.is_string()) return v.as_string().str;
  if (v.is_integer()) return std::to_string(v.as_integer());
  if (v.is_boolean()) return v.as_boolean() ? "true" : "false";
  if (v.is_floating()) return std::to_string(v.as_floating());
  if (v.is_array()) {
    std::string out;
    for (const auto& item : v.as_array()) {
      if (!out.empty()) out += ",";
      out += toml_scalar(key, item);
    }
    return out;
  }
  throw ConfigError(key + ": unsupported value type in the config file");
}

std::string env_name(const std::string& setting) {
  std::string out = "KEEL_";
  for (char c : setting) out.push_back(static_cast<char>(::toupper(static_cast<unsigned char>(c))));
  return out;
}

}  // namespace

fs::path Config::sqlite_path() const { return fs::path(database.substr(std::string("sqlite://").size())); }

Config load_config(const std::optional<fs::path>& config_file_arg, const SettingMap& flags,
                   const std::map<std::string, std::string>& env, const fs::path& cwd,
                   const std::vector<std::string>& tables) {
  Config c;
  c.data_dir = resolve(cwd, "keel-data");

  std::optional<fs::path> config_file = config_file_arg;
  if (!config_file) {
    if (auto it = env.find("KEEL_CONFIG"); it != env.end() && !it->second.empty()) config_file = it->second;
  }

  if (config_file) {
    fs::path file = resolve(cwd, config_file->string());
    if (!fs::exists(file)) throw ConfigError("config: no such file: " + file.string());
    c.config_file = file;
    const fs::path base = file.parent_path();
    c.data_dir = resolve(base, "keel-data");
    toml::value root;
    try {
      // TOML is UTF-8 text: anything else is refused before the parser sees it (toml11 3.7 reads past its
      // buffer on some invalid bytes; a fuzzer found it).
      std::ifstream in(file, std::ios::binary);
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) throw ConfigError("config: cannot read " + file.string());
      if (!utf8_text(text))
        throw ConfigError("config: " + file.string() + " is not UTF-8 text (TOML must be)");
      std::istringstream stream(text);
      root = toml::parse(stream, file.string());
    } catch (const ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      std::string msg = e.what();
      auto nl = msg.find('\n');
      throw ConfigError("config: " + file.string() + ": " +
                        (nl == std::string::npos ? msg : msg.substr(0, nl)));
    }
    for (const auto& [key, value] : root.as_table()) {
      if (value.is_table()) {
        for (const auto& [sub, subval] : value.as_table())
          c.module_settings[key + "." + sub] = toml_scalar(key + "." + sub, subval);
        continue;
      }
      const Setting* s = find_setting(key);
      if (!s) throw ConfigError("config: unknown setting '" + key + "' in " + file.string());
      s->apply(c, toml_scalar(key, value), base);
    }
  }

  for (const auto& s : settings()) {
    if (auto it = env.find(env_name(s.name)); it != env.end()) s.apply(c, it->second, cwd);
  }
  // KEEL_AUTH_ACCESS_TTL_SECONDS=600 sets [auth] access_ttl_seconds, and likewise for each table of settings
  // (KEEL_DATABASE_STATEMENT_TIMEOUT_MS; KEEL_DATABASE alone is the URL).
  for (const auto& [name, value] : env) {
    for (const std::string& m : tables) {
      const std::string prefix = env_name(m) + "_";
      if (name.size() <= prefix.size() || name.rfind(prefix, 0) != 0) continue;
      std::string key = name.substr(prefix.size());
      for (auto& ch : key) ch = static_cast<char>(::tolower(static_cast<unsigned char>(ch)));
      c.module_settings[m + "." + key] = value;
    }
  }
  for (const auto& [name, value] : flags) {
    const Setting* s = find_setting(name);
    if (!s) throw ConfigError("unknown setting '" + name + "'");
    s->apply(c, value, cwd);
  }
  if (c.database.empty()) c.database = "sqlite://" + (c.data_dir / "keel.db").string();
  return c;
}

std::string redact_url(const std::string& url) {
  static const std::regex userinfo(R"(^([a-z]+://[^:/@]*):[^@]*@)");
  static const std::regex query_password(R"(([?&]password=)[^&]*)");
  return std::regex_replace(std::regex_replace(url, userinfo, "$1:***@"), query_password, "$1***");
}

std::map<std::string, std::string> process_environment() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    if (kv.rfind("KEEL_", 0) != 0) continue;
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    out.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return out;
}

}  // namespace keel
