#pragma once
// A front cache for values looked up on every request: the calling thread's slot for `key` in a small
// direct-mapped table of T (one table per T and thread). The slot is chosen by the key's last 8 bytes (the
// random tail of a token's signature or of a UUIDv7), so a hit costs no lock and no hash of the whole key.
// A FrontEntry holds the key, its value, and what tells a stale entry: its owner (one cache's entries from
// another's) and an epoch the owner moves whenever cached values may have gone stale.
#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace keel {

template <class V>
struct FrontEntry {
  uint64_t owner = 0;
  uint64_t epoch = 0;
  std::string key;
  V value{};
  bool holds(uint64_t o, uint64_t e, std::string_view k) const {
    return owner == o && epoch == e && key == k;
  }
  void set(uint64_t o, uint64_t e, std::string_view k, V v) {
    owner = o;
    epoch = e;
    key.assign(k);
    value = std::move(v);
  }
};

template <class T, size_t kSlots = 64>
T& thread_slot(std::string_view key) {
  static_assert(kSlots >= 2 && std::has_single_bit(kSlots));
  thread_local std::array<T, kSlots> table;
  uint64_t tail = 0;
  const size_t n = std::min<size_t>(key.size(), sizeof tail);
  std::memcpy(&tail, key.data() + key.size() - n, n);
  return table[(tail * 0x9e3779b97f4a7c15ULL) >> (64 - std::countr_zero(kSlots))];
}

}  // namespace keel
