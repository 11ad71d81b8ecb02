#pragma once
#include <chrono>
#include <optional>
#include <string_view>

namespace keel::http {

// "500ms", "2s", "30s", "1m" or a bare number of seconds; nullopt when malformed or above `max`.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text, std::chrono::milliseconds max);

}  // namespace keel::http
