#pragma once
// A budget for requests that wait (blocking registry queries, event long-polls): each holds a connection and
// a coroutine for up to a minute, so one caller may hold at most `per_caller` of them at once in a module of
// a process. Past it the request is 429 with Retry-After at once, instead of piling up waits.
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "keel/core/error.hpp"

namespace keel::http {

class LongPolls {
 public:
  explicit LongPolls(int per_caller) : per_caller_(per_caller) {}  // 0: no budget

  // Held while the request waits; gives its place back when destroyed.
  class Ticket {
   public:
    Ticket(LongPolls* owner, std::string caller) : owner_(owner), caller_(std::move(caller)) {}
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { owner_->leave(caller_); }

   private:
    LongPolls* owner_;
    std::string caller_;
  };

  // A place for `caller` (a token's subject), or a 429 Error when it holds per_caller already.
  std::unique_ptr<Ticket> enter(const std::string& caller) {
    {
      std::lock_guard lk(mu_);
      int& n = waiting_[caller];
      if (per_caller_ > 0 && n >= per_caller_) {
        Error e(429, "Too Many Requests",
                "this caller already has " + std::to_string(per_caller_) + " waiting requests here");
        e.headers.emplace_back("Retry-After", "1");
        throw e;
      }
      ++n;
    }
    return std::make_unique<Ticket>(this, caller);
  }

  // How many callers wait now (entries go when their last request ends).
  size_t callers() const {
    std::lock_guard lk(mu_);
    return waiting_.size();
  }

 private:
  void leave(const std::string& caller) {
    std::lock_guard lk(mu_);
    if (auto it = waiting_.find(caller); it != waiting_.end() && --it->second <= 0) waiting_.erase(it);
  }

  const int per_caller_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> waiting_;
};

}  // namespace keel::http
