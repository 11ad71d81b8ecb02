#pragma once
// Failed-login throttling per account and per client address. An attempt is reserved before the password is
// checked, under one lock, so parallel guesses cannot slip past the limit.
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace keel::auth {

class LoginThrottle {
 public:
  LoginThrottle(int max_per_account, int max_per_ip, std::chrono::seconds window);
  // nullopt: go ahead (the attempt is reserved); otherwise the seconds to wait.
  std::optional<int> acquire(const std::string& account, const std::string& ip);
  // Ends a reserved attempt. Success clears the account's failures.
  void release(const std::string& account, const std::string& ip, bool success);

 private:
  struct Counter {
    int failures = 0;
    int pending = 0;
    std::chrono::steady_clock::time_point window_start;
  };
  std::optional<int> blocked(Counter& c, int max, std::chrono::steady_clock::time_point now);
  void collect(std::chrono::steady_clock::time_point now);

  int max_account_;
  int max_ip_;
  std::chrono::seconds window_;
  std::mutex mu_;
  std::unordered_map<std::string, Counter> accounts_;
  std::unordered_map<std::string, Counter> ips_;
  std::chrono::steady_clock::time_point last_collect_{};
};

}  // namespace keel::auth
