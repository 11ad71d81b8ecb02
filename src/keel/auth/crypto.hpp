#pragma once
// Small crypto helpers over libsodium: encodings, hashes, the master key and authenticated encryption.
#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "keel/core/base64.hpp"
#include "keel/core/ids.hpp"  // sha256_hex

namespace keel::auth {

void ensure_sodium();

std::string hmac_sha256(std::string_view key, std::string_view data);  // 32 raw bytes
std::string random_bytes(size_t n);
bool constant_time_equal(std::string_view a, std::string_view b);

// The 32-byte master key that encrypts signing keys at rest and derives the refresh-token key.
using MasterKey = std::array<uint8_t, 32>;
// The key from its text: base64 in either alphabet, padded or not (what `base64` and key files hold).
std::optional<MasterKey> parse_master_key(std::string_view text);
// The key in `path` (one line of base64url text); nullopt when the file does not exist. A file that holds no
// key is a ConfigError.
std::optional<MasterKey> read_master_key_file(const std::filesystem::path& path);
// A new random key written to `path` with mode 0600; a process that races this one to create the file gets
// the same key (whichever was linked first).
MasterKey create_master_key_file(const std::filesystem::path& path);
// A subkey for one purpose (libsodium's KDF; `context` is 8 characters).
std::string derive_key(const MasterKey& master, uint64_t id, const char context[8]);

// XChaCha20-Poly1305 with `aad` bound in; output is nonce || ciphertext.
std::string seal(const MasterKey& key, std::string_view plaintext, std::string_view aad);
// nullopt when the key is wrong or the data was tampered with.
std::optional<std::string> open(const MasterKey& key, std::string_view sealed, std::string_view aad);

}  // namespace keel::auth
