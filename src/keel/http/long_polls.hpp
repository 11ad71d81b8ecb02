#pragma once
// Places held per key, at most `cap` a key at once (0: no cap): connections per client address at the
// server, waiting requests per token in a module. A key's entry lives only while it holds a place, so the
// map is as large as the keys in use.
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "keel/core/error.hpp"

namespace keel::http {

class KeyedSlots {
 public:
  explicit KeyedSlots(int cap) : cap_(cap) {}
  KeyedSlots(const KeyedSlots&) = delete;
  KeyedSlots& operator=(const KeyedSlots&) = delete;

  // Held while in use; gives its place back when destroyed.
  class Slot {
   public:
    Slot(KeyedSlots* owner, std::string key) : owner_(owner), key_(std::move(key)) {}
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { owner_->leave(key_); }

   private:
    KeyedSlots* owner_;
    std::string key_;
  };

  // A place for `key`, or null when it holds `cap` already.
  std::unique_ptr<Slot> take(const std::string& key) {
    {
      std::lock_guard lk(mu_);
      int& n = held_[key];
      if (cap_ > 0 && n >= cap_) return nullptr;
      ++n;
    }
    return std::make_unique<Slot>(this, key);
  }

  // A place for a waiting request (or `what` else) of `caller` (a token's subject), or a 429 with
  // Retry-After.
  std::unique_ptr<Slot> enter(const std::string& caller, const char* what = "waiting requests") {
    auto slot = take(caller);
    if (!slot) {
      Error e(429, "Too Many Requests",
              "this caller already has " + std::to_string(cap_) + " " + what + " here");
      e.headers.emplace_back("Retry-After", "1");
      throw e;
    }
    return slot;
  }

  // How many keys hold a place now.
  size_t keys() const {
    std::lock_guard lk(mu_);
    return held_.size();
  }

 private:
  void leave(const std::string& key) {
    std::lock_guard lk(mu_);
    if (auto it = held_.find(key); it != held_.end() && --it->second <= 0) held_.erase(it);
  }

  const int cap_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> held_;
};

// Waiting requests (blocking registry queries, event long-polls) per token: each holds a connection and a
// coroutine for up to a minute.
using LongPolls = KeyedSlots;

}  // namespace keel::http
