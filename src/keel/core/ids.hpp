#pragma once
#include <string>
#include <string_view>

namespace keel {

// Time-ordered UUIDv7 (RFC 9562), lowercase canonical text.
std::string uuid_v7();
bool is_uuid(std::string_view s);
// n random bytes (from libsodium's CSPRNG) as lowercase hex.
std::string random_hex(size_t bytes);
// The SHA-256 of `data`, as 64 lower-case hex digits.
std::string sha256_hex(std::string_view data);
// A client-supplied X-Request-Id is kept when it is 1-128 characters of [A-Za-z0-9._:-].
bool is_sane_request_id(std::string_view s);

}  // namespace keel

namespace keel {
// Cheap, non-cryptographic ids for request ids and trace spans (a per-thread generator seeded from the
// CSPRNG).
std::string fast_uuid_v7();
std::string fast_hex(size_t bytes);
// The same into a caller's string, whose capacity is reused (per-request ids on a kept-alive connection).
void assign_fast_uuid_v7(std::string& out);
void append_fast_hex(std::string& out, size_t bytes);
}  // namespace keel
