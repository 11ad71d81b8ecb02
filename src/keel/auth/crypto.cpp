#include "keel/auth/crypto.hpp"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "keel/core/config.hpp"

namespace keel::auth {

void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
  });
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  std::string out(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string random_bytes(size_t n) {
  ensure_sodium();
  std::string out(n, '\0');
  randombytes_buf(out.data(), n);
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<MasterKey> parse_master_key(std::string_view text) {
  std::string url;
  for (char c : text) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    url.push_back(c == '+' ? '-' : c == '/' ? '_' : c);
  }
  auto raw = base64url_decode(url);
  MasterKey key{};
  if (!raw || raw->size() != key.size()) return std::nullopt;
  std::copy(raw->begin(), raw->end(), key.begin());
  return key;
}

std::optional<MasterKey> read_master_key_file(const std::filesystem::path& path) {
  ensure_sodium();
  if (!std::filesystem::exists(path)) return std::nullopt;
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  auto key = parse_master_key(text);
  if (!key)
    throw ConfigError("auth.master_key_file: " + path.string() + " does not hold a base64url 32-byte key");
  return key;
}

MasterKey create_master_key_file(const std::filesystem::path& path) {
  ensure_sodium();
  MasterKey key{};
  std::filesystem::create_directories(path.parent_path());
  crypto_kdf_keygen(key.data());
  const std::string text =
      base64url_encode(std::string_view(reinterpret_cast<const char*>(key.data()), key.size())) + "\n";
  // Written to a private temporary file (mode 0600 from the start), flushed, then linked into place only if
  // no other process got there first. Everyone then reads the file, so racing starts agree on one key.
  std::string tmp = path.string() + "." + std::string(6, 'X');  // mkstemp's template
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) throw ConfigError("auth.master_key_file: cannot create a file next to " + path.string());
  const bool written =
      ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!written) {
    ::unlink(tmp.c_str());
    throw ConfigError("auth.master_key_file: cannot write " + path.string());
  }
  const int linked = ::link(tmp.c_str(), path.c_str());
  ::unlink(tmp.c_str());
  if (linked != 0 && errno != EEXIST)
    throw ConfigError("auth.master_key_file: cannot create " + path.string());
  auto stored = read_master_key_file(path);
  if (!stored) throw ConfigError("auth.master_key_file: " + path.string() + " vanished while being created");
  return *stored;
}

std::string derive_key(const MasterKey& master, uint64_t id, const char context[8]) {
  std::string out(32, '\0');
  crypto_kdf_derive_from_key(reinterpret_cast<unsigned char*>(out.data()), out.size(), id, context,
                             master.data());
  return out;
}

std::string seal(const MasterKey& key, std::string_view plaintext, std::string_view aad) {
  ensure_sodium();
  std::string out(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + plaintext.size() +
                      crypto_aead_xchacha20poly1305_ietf_ABYTES,
                  '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      nonce + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen,
      reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
      reinterpret_cast<const unsigned char*>(aad.data()), aad.size(), nullptr, nonce, key.data());
  out.resize(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + clen);
  return out;
}

std::optional<std::string> open(const MasterKey& key, std::string_view sealed, std::string_view aad) {
  constexpr size_t npub = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
  if (sealed.size() < npub + crypto_aead_xchacha20poly1305_ietf_ABYTES) return std::nullopt;
  std::string out(sealed.size() - npub, '\0');
  unsigned long long mlen = 0;
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(out.data()), &mlen, nullptr, nonce + npub, sealed.size() - npub,
          reinterpret_cast<const unsigned char*>(aad.data()), aad.size(), nonce, key.data()) != 0)
    return std::nullopt;
  out.resize(mlen);
  return out;
}

}  // namespace keel::auth
