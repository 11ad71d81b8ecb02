#pragma once
// Name lookups for the HTTP client's new upstream connections (client.cpp): a pool of the process's own, one
// lookup at a time per name, answers kept for a few seconds. Internal to http/.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "keel/core/time.hpp"

namespace keel::http {

// Name lookups for new upstream connections. getaddrinfo blocks and cannot be interrupted, and Asio runs an
// io_context's lookups one after another on one thread: one name whose lookup hangs would hold up every
// other name's on that I/O thread. Lookups run instead on a pool the process shares, one at a time per name
// (later askers wait for the one under way), and an answer is kept for a few seconds, so opening more
// connections to a known name costs no lookup. Failures are not kept: the next connection asks again.
class NameLookups {
 public:
  using Endpoints = std::vector<boost::asio::ip::tcp::endpoint>;
  using Done = std::function<void(const boost::system::error_code&, const Endpoints&)>;

  // Never destroyed: a pool thread may still be inside a hanging getaddrinfo when the process exits.
  static NameLookups& instance() {
    static NameLookups* lookups = new NameLookups;
    return *lookups;
  }

  // A recent answer for the name, without waiting.
  bool cached(const std::string& host, uint16_t port, Endpoints& out) {
    const auto now = coarse_steady_now();
    std::lock_guard lk(mu_);
    auto it = entries_.find(key(host, port));
    if (it == entries_.end() || !it->second.answered || now - it->second.answered_at >= kKeep) return false;
    out = it->second.endpoints;
    return true;
  }

  // Looks the name up (or joins the lookup under way); `done` runs on `ex` with its addresses.
  void resolve(const std::string& host, uint16_t port, const boost::asio::any_io_executor& ex, Done done) {
    const std::string k = key(host, port);
    {
      std::lock_guard lk(mu_);
      if (entries_.size() > kMaxEntries) prune();
      Entry& e = entries_[k];
      e.waiters.push_back(
          Waiter{&boost::asio::query(ex, boost::asio::execution::context), ex, std::move(done)});
      if (e.running) return;
      e.running = true;
    }
    try {
      boost::asio::post(pool_, [this, host, port, k] { look_up(host, port, k); });
    } catch (...) {
      answer(k, boost::asio::error::no_memory, {});
      throw;
    }
  }

  // Drops the waiters of a context about to be destroyed (their timers belong to it).
  void forget(boost::asio::execution_context& ctx) {
    std::vector<Waiter> dropped;
    std::lock_guard lk(mu_);
    for (auto& [k, e] : entries_)
      std::erase_if(e.waiters, [&](Waiter& w) {
        if (w.ctx != &ctx) return false;
        dropped.push_back(std::move(w));
        return true;
      });
  }

 private:
  static constexpr auto kKeep = std::chrono::seconds(10);
  static constexpr int kThreads = 8;
  static constexpr size_t kMaxEntries = 1000;
  struct Waiter {
    boost::asio::execution_context* ctx;
    boost::asio::any_io_executor ex;
    Done done;
  };
  struct Entry {
    bool running = false;
    bool answered = false;
    std::chrono::steady_clock::time_point answered_at;
    Endpoints endpoints;
    std::vector<Waiter> waiters;
  };
  static std::string key(const std::string& host, uint16_t port) { return host + ":" + std::to_string(port); }

  // On a pool thread.
  void look_up(const std::string& host, uint16_t port, const std::string& k) noexcept {
    boost::system::error_code ec;
    Endpoints endpoints;
    try {
      boost::asio::ip::tcp::resolver resolver(pool_.get_executor());
      const auto results = resolver.resolve(host, std::to_string(port), ec);
      if (!ec)
        for (const auto& r : results) endpoints.push_back(r.endpoint());
      if (!ec && endpoints.empty()) ec = boost::asio::error::host_not_found;
    } catch (...) {
      ec = boost::asio::error::no_memory;
      endpoints.clear();
    }
    answer(k, ec, endpoints);
  }

  // Ends the lookup of `k`: keeps a good answer and hands it to everyone waiting, each on their context. The
  // answers are posted under the lock, so forget() cannot miss one on its way to a context being destroyed.
  void answer(const std::string& k, const boost::system::error_code& ec,
              const Endpoints& endpoints) noexcept {
    std::lock_guard lk(mu_);
    auto it = entries_.find(k);
    if (it == entries_.end()) return;
    Entry& e = it->second;
    e.running = false;
    e.answered = !ec;
    e.answered_at = coarse_steady_now();
    std::vector<Waiter> waiters;
    waiters.swap(e.waiters);
    try {
      e.endpoints = endpoints;
    } catch (...) {
      e.answered = false;
    }
    for (auto& w : waiters) {
      try {
        boost::asio::post(w.ex, [done = std::move(w.done), ec, endpoints] { done(ec, endpoints); });
      } catch (...) {
        // No memory to answer: that wait ends at its deadline.
      }
    }
  }

  // Drops entries with no lookup under way and no fresh answer; if that is not enough, every answer.
  void prune() {
    const auto now = coarse_steady_now();
    const auto idle = [&](const auto& kv) { return !kv.second.running && kv.second.waiters.empty(); };
    std::erase_if(entries_, [&](const auto& kv) {
      return idle(kv) && (!kv.second.answered || now - kv.second.answered_at >= kKeep);
    });
    if (entries_.size() > kMaxEntries / 2) std::erase_if(entries_, idle);
  }

  std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  boost::asio::thread_pool pool_{kThreads};
};

}  // namespace keel::http
