#include "keel/core/ids.hpp"

#include <sodium.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <mutex>

namespace keel {

namespace {
constexpr char kHex[] = "0123456789abcdef";

// Writes 2n hex digits at `out`.
char* hex_into(const uint8_t* p, size_t n, char* out) {
  for (size_t i = 0; i < n; ++i) {
    *out++ = kHex[p[i] >> 4];
    *out++ = kHex[p[i] & 0xf];
  }
  return out;
}

void to_hex(const uint8_t* p, size_t n, std::string& out) {
  char buf[128];
  while (n > 0) {
    const size_t k = n < sizeof buf / 2 ? n : sizeof buf / 2;
    out.append(buf, static_cast<size_t>(hex_into(p, k, buf) - buf));
    p += k;
    n -= k;
  }
}

// Formatted in a fixed buffer and assigned once: ids are made on every request.
void format_uuid(const uint8_t* b, std::string& s) {
  char buf[36];
  char* o = hex_into(b, 4, buf);
  *o++ = '-';
  o = hex_into(b + 4, 2, o);
  *o++ = '-';
  o = hex_into(b + 6, 2, o);
  *o++ = '-';
  o = hex_into(b + 8, 2, o);
  *o++ = '-';
  hex_into(b + 10, 6, o);
  s.assign(buf, sizeof buf);
}

uint64_t unix_millis_now() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Stamps a Unix millisecond time, version 7 and the RFC 9562 variant onto 16 random bytes.
void v7_from_random(std::array<uint8_t, 16>& b, uint64_t ms, std::string& out) {
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
  b[6] = static_cast<uint8_t>(0x70 | (b[6] & 0x0f));
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));
  format_uuid(b.data(), out);
}

void ensure_sodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();
  });
}
}  // namespace

std::string uuid_v7() {
  ensure_sodium();
  std::array<uint8_t, 16> b{};
  randombytes_buf(b.data(), b.size());
  std::string out;
  v7_from_random(b, unix_millis_now(), out);
  return out;
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

std::string sha256_hex(std::string_view data) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return hex;
}

std::string random_hex(size_t bytes) {
  ensure_sodium();
  std::string out;
  out.reserve(bytes * 2);
  uint8_t buf[64];
  while (bytes > 0) {
    size_t n = bytes < sizeof buf ? bytes : sizeof buf;
    randombytes_buf(buf, n);
    to_hex(buf, n, out);
    bytes -= n;
  }
  return out;
}

namespace {
struct FastRng {
  uint64_t state;
  FastRng() {
    ensure_sodium();
    randombytes_buf(&state, sizeof state);
  }
  uint64_t next() {  // splitmix64
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};
FastRng& fast_rng() {
  thread_local FastRng rng;
  return rng;
}
}  // namespace

void assign_fast_uuid_v7(std::string& out) {
  std::array<uint8_t, 16> b{};
  FastRng& rng = fast_rng();
  const uint64_t r1 = rng.next(), r2 = rng.next();
  std::memcpy(b.data(), &r1, 8);
  std::memcpy(b.data() + 8, &r2, 8);
  // The precise clock: ids made in the same few milliseconds (memories) must still sort by time.
  v7_from_random(b, unix_millis_now(), out);
}

std::string fast_uuid_v7() {
  std::string out;
  assign_fast_uuid_v7(out);
  return out;
}

void append_fast_hex(std::string& out, size_t bytes) {
  FastRng& rng = fast_rng();
  char buf[16];
  while (bytes > 0) {
    const uint64_t r = rng.next();
    const size_t n = bytes < 8 ? bytes : 8;
    out.append(buf, static_cast<size_t>(hex_into(reinterpret_cast<const uint8_t*>(&r), n, buf) - buf));
    bytes -= n;
  }
}

std::string fast_hex(size_t bytes) {
  std::string out;
  out.reserve(bytes * 2);
  append_fast_hex(out, bytes);
  return out;
}

bool is_sane_request_id(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '_' || c == '-' || c == ':'))
      return false;
  }
  return true;
}

}  // namespace keel
