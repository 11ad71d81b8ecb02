#include "keel/core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>

#include "keel/core/time.hpp"

namespace keel::log {

namespace {
std::shared_ptr<spdlog::logger>& logger() {
  static std::shared_ptr<spdlog::logger> l = [] {
    auto lg = spdlog::stderr_logger_mt("keel");
    lg->set_pattern("%v");
    return lg;
  }();
  return l;
}
Level g_level = Level::info;

const char* level_name(Level l) {
  switch (l) {
    case Level::trace:
      return "trace";
    case Level::debug:
      return "debug";
    case Level::info:
      return "info";
    case Level::warn:
      return "warn";
    case Level::error:
      return "error";
    default:
      return "off";
  }
}
}  // namespace

void init(std::string_view level) {
  static const std::pair<std::string_view, Level> names[] = {{"trace", Level::trace}, {"debug", Level::debug},
                                                             {"info", Level::info},   {"warn", Level::warn},
                                                             {"error", Level::error}, {"off", Level::off}};
  for (const auto& [n, l] : names)
    if (n == level) g_level = l;
  logger()->set_level(spdlog::level::trace);
  logger()->flush_on(spdlog::level::trace);
}

bool enabled(Level level) { return level >= g_level && g_level != Level::off; }

void write(Level level, std::string_view msg, const boost::json::object& fields) {
  if (!enabled(level)) return;
  boost::json::object o;
  o.reserve(fields.size() + 3);
  o["ts"] = now_rfc3339();
  o["level"] = level_name(level);
  o["msg"] = msg;
  for (const auto& kv : fields) o[kv.key()] = kv.value();
  logger()->info(boost::json::serialize(o));
}

}  // namespace keel::log
