#pragma once
// Logs are one JSON object a line on stderr: {"ts","level","msg",...fields}.
#include <boost/json/object.hpp>
#include <string>
#include <string_view>

namespace keel::log {

enum class Level { trace, debug, info, warn, error, off };

void init(std::string_view level);
bool enabled(Level level);
void write(Level level, std::string_view msg, const boost::json::object& fields = {});

inline void debug(std::string_view msg, const boost::json::object& f = {}) { write(Level::debug, msg, f); }
inline void info(std::string_view msg, const boost::json::object& f = {}) { write(Level::info, msg, f); }
inline void warn(std::string_view msg, const boost::json::object& f = {}) { write(Level::warn, msg, f); }
inline void error(std::string_view msg, const boost::json::object& f = {}) { write(Level::error, msg, f); }

}  // namespace keel::log
