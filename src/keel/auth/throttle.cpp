#include "keel/auth/throttle.hpp"

namespace keel::auth {

namespace {
// Past this many tracked keys, new keys are refused (429) until the window frees some: memory stays bounded
// however many addresses or accounts an attacker cycles through.
constexpr size_t kMaxTracked = 200000;
}  // namespace

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
  if (now - last_collect_ >= std::chrono::seconds(1)) {
    collect(now);
    last_collect_ = now;
  }
  // The address first: a blocked address adds no account entries.
  auto ip_it = ips_.find(ip);
  if (ip_it == ips_.end()) {
    if (ips_.size() >= kMaxTracked) return 1;
    ip_it = ips_.emplace(ip, Counter{0, 0, now}).first;
  }
  if (auto wait = blocked(ip_it->second, max_ip_, now)) return wait;
  auto acc_it = accounts_.find(account);
  if (acc_it == accounts_.end()) {
    if (accounts_.size() >= kMaxTracked) return 1;
    acc_it = accounts_.emplace(account, Counter{0, 0, now}).first;
  }
  if (auto wait = blocked(acc_it->second, max_account_, now)) return wait;
  ++acc_it->second.pending;
  ++ip_it->second.pending;
  return std::nullopt;
}

void LoginThrottle::release(const std::string& account, const std::string& ip, bool success) {
  std::lock_guard lk(mu_);
  auto settle = [&](std::unordered_map<std::string, Counter>& m, const std::string& key, bool clear) {
    auto it = m.find(key);
    if (it == m.end()) return;
    --it->second.pending;
    if (clear)
      it->second.failures = 0;
    else if (!success)
      ++it->second.failures;
    if (it->second.pending == 0 && it->second.failures == 0) m.erase(it);
  };
  settle(accounts_, account, success);
  settle(ips_, ip, false);
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
