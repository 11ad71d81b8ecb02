#pragma once
// The server's state, shared by its two halves (internal to http/): server.cpp runs a connection, from its
// first byte to its close; listeners.cpp binds the ports, accepts, sweeps deadlines and drains at SIGTERM.
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "keel/core/error.hpp"
#include "keel/http/client.hpp"
#include "keel/http/fast/fast_paths.hpp"
#include "keel/http/long_polls.hpp"
#include "keel/http/server.hpp"

namespace keel::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

struct Listener {
  std::string module;
  uint16_t port = 0;
  std::shared_ptr<Router> router;
  std::shared_ptr<HttpMetrics> metrics;
};

struct Connection {
  tcp::socket* socket;
  bool busy = false;     // a request is being handled or answered
  bool partial = false;  // some of the next request has arrived (the drain answers it rather than close)
  // Checked by the worker's sweeper, which closes the socket once it passes: cheaper than a timer per
  // operation, and precise enough for timeouts measured in seconds.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct Worker {
  // Declared before ctx: destroying ctx destroys the frames of connections that outlived the drain, and
  // their cleanup still touches this set.
  std::unordered_set<Connection*> connections;
  // One thread runs ctx, and a socket is only ever touched by the thread that runs its context (the upstream
  // pool is per thread, the drain is posted): with the fast paths, the reactor's per-socket locks are left
  // out (http/fast/fast_paths.hpp).
  net::io_context ctx{fast::kIoThreadHint};
  net::steady_timer sweeper{ctx};
  std::vector<std::pair<std::unique_ptr<tcp::acceptor>, Listener*>> acceptors;
};

struct Server::Impl {
  ServerOptions opt;
  // Members the connection frames use are declared before the workers, so they outlive them.
  std::vector<std::unique_ptr<Listener>> listeners;
  std::atomic<int64_t> open{0};
  KeyedSlots per_ip{opt.max_connections_per_ip};  // open connections per client address
  std::atomic<bool> draining{false};
  std::atomic<int> drains_pending{0};  // workers that have yet to run their part of the drain
  std::vector<std::unique_ptr<Worker>> workers;
  ~Impl() {
    // Lookups still under way must not answer on a destroyed context.
    for (auto& w : workers) forget_lookups(w->ctx);
  }

  explicit Impl(ServerOptions o) : opt(std::move(o)) {
    const int n = opt.io_threads > 0 ? opt.io_threads : 1;
    for (int i = 0; i < n; ++i) workers.push_back(std::make_unique<Worker>());
  }

  // listeners.cpp
  uint16_t listen(std::string module, uint16_t port, std::shared_ptr<Router> router,
                  std::shared_ptr<HttpMetrics> metrics);
  net::awaitable<void> accept_loop(Worker* w, tcp::acceptor* acc, Listener* l);
  // Closes connections whose deadline passed (slow or idle clients).
  net::awaitable<void> sweep(Worker* w);
  void begin_drain();
  net::awaitable<void> wait_drained();

  // server.cpp
  // `counted`: the drain counted it in `open` already, before spawning it, so the drain's end cannot miss it.
  net::awaitable<void> serve(Worker* w, Listener* l, tcp::socket socket, bool counted = false);
  // Runs the route's handler; errors become problem responses (a 500 for anything unexpected, logged).
  static void handle_error(const Request& req, std::optional<Response>& res);
  // Writes a problem response for a request that never reached a handler (bad framing, too large), then
  // the caller closes the connection.
  // `e` is a named object of the caller's: see the note in auth/passwords.hpp on GCC 12 and temporaries.
  net::awaitable<void> reject(tcp::socket& socket, Connection& conn, const Error& e, Listener* l,
                              const std::string& request_id);
  Error too_large() const;
};

}  // namespace keel::http
