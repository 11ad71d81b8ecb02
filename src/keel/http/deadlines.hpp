#pragma once
// Timeouts without a timer per operation: sockets are watched with a deadline, and each I/O thread's
// sweeper (in the server) closes those whose deadline passed, which fails their pending operation. The watch
// list is intrusive, so watching costs no allocation.
#include <boost/asio/ip/tcp.hpp>
#include <chrono>

#include "keel/core/time.hpp"

namespace keel::http {

struct Watched {
  boost::asio::ip::tcp::socket* socket = nullptr;
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  bool expired = false;  // set when the sweeper closed the socket
  Watched* prev = nullptr;
  Watched* next = nullptr;
  void expires_after(std::chrono::steady_clock::duration d) { deadline = coarse_steady_now() + d; }
  void clear() { deadline = std::chrono::steady_clock::time_point::max(); }
};

// The calling I/O thread's watch list.
class Deadlines {
 public:
  void add(Watched* w);
  void remove(Watched* w);
  void sweep(std::chrono::steady_clock::time_point now);
  static Deadlines& this_thread();

 private:
  Watched* head_ = nullptr;
};

// Adds on construction, removes on destruction.
class WatchGuard {
 public:
  explicit WatchGuard(Watched* w) : w_(w) { Deadlines::this_thread().add(w_); }
  ~WatchGuard() { Deadlines::this_thread().remove(w_); }
  WatchGuard(const WatchGuard&) = delete;
  WatchGuard& operator=(const WatchGuard&) = delete;

 private:
  Watched* w_;
};

}  // namespace keel::http
