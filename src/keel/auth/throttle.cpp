#include "keel/auth/throttle.hpp"

namespace keel::auth {

LoginThrottle::LoginThrottle(int max_per_account, int max_per_ip, std::chrono::seconds window)
    : max_account_(max_per_account), max_ip_(max_per_ip), window_(window) {}

std::optional<int> LoginThrottle::blocked(Counter& c, int max, std::chrono::steady_clock::time_point now) {
  if (now - c.window_start >= window_) {
    c.window_start = now;
    c.failures = 0;
  }
  if (c.failures + c.pending < max) return std::nullopt;
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(c.window_start + window_ - now).count();
  return static_cast<int>(left < 1 ? 1 : left);
}

std::optional<int> LoginThrottle::acquire(const std::string& account, const std::string& ip) {
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lk(mu_);
  if (accounts_.size() + ips_.size() > 100000) collect(now);
  Counter& a = accounts_[account];
  Counter& i = ips_[ip];
  if (auto wait = blocked(a, max_account_, now)) return wait;
  if (auto wait = blocked(i, max_ip_, now)) return wait;
  ++a.pending;
  ++i.pending;
  return std::nullopt;
}

void LoginThrottle::release(const std::string& account, const std::string& ip, bool success) {
  std::lock_guard lk(mu_);
  Counter& a = accounts_[account];
  Counter& i = ips_[ip];
  --a.pending;
  --i.pending;
  if (success) {
    a.failures = 0;
  } else {
    ++a.failures;
    ++i.failures;
  }
}

void LoginThrottle::collect(std::chrono::steady_clock::time_point now) {
  for (auto* m : {&accounts_, &ips_}) {
    for (auto it = m->begin(); it != m->end();) {
      if (it->second.pending == 0 && now - it->second.window_start >= window_)
        it = m->erase(it);
      else
        ++it;
    }
  }
}

}  // namespace keel::auth
