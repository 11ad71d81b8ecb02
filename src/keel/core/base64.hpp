#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace keel {

// RFC 4648 URL-safe base64 without padding (JWS, tokens, cursors).
std::string base64url_encode(std::string_view bytes);
// nullopt on characters outside the URL-safe alphabet or on padding.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace keel
