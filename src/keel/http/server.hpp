#pragma once
// The HTTP/1.1 server: one io_context per I/O thread, each with its own SO_REUSEPORT acceptor per port.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "keel/http/metrics.hpp"
#include "keel/http/router.hpp"

namespace boost::asio {
class io_context;
}

namespace keel::http {

struct ServerOptions {
  std::string listen = "127.0.0.1";
  int io_threads = 1;
  size_t body_limit = 1 << 20;
  size_t header_limit = 16 * 1024;
  std::chrono::milliseconds header_timeout{10000};
  std::chrono::milliseconds body_timeout{30000};
  int max_connections = 10000;
  // Connections one client address may hold open at once (0: no cap); past it a new one is closed at once,
  // so no single address can take the whole of max_connections. Behind a proxy every client shares its
  // address: raise it there, or set 0.
  int max_connections_per_ip = 1000;
  // The listeners (by module) the per-address cap applies to; empty: all. keel caps its public entry point,
  // the gateway: behind it, every request a gateway sends a module comes from that gateway's one address.
  std::vector<std::string> per_ip_modules;
  bool access_log = true;
  std::chrono::milliseconds shutdown_grace{10000};
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the port now, so a conflict is reported before anything starts; throws std::runtime_error naming
  // the port. Port 0 picks a free port; the bound port is returned.
  uint16_t listen(std::string module, uint16_t port, std::shared_ptr<Router> router,
                  std::shared_ptr<HttpMetrics> metrics);
  // I/O thread 0's context, for background tasks (timers, probes, signals).
  boost::asio::io_context& main_context();
  // Runs the I/O threads on this thread and io_threads-1 others; returns after shutdown() has drained.
  void run();
  // Thread-safe. Stops accepting, closes idle connections, lets in-flight requests finish within the grace
  // period, then stops the I/O threads.
  void shutdown();
  int64_t open_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::http
