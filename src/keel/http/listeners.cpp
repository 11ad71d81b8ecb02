// The server's listeners and lifecycle (server_state.hpp): binding each port on every I/O thread, accepting,
// the sweeper that enforces connection deadlines, the drain at SIGTERM, and running the I/O threads.
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>

#include "keel/http/deadlines.hpp"
#include "keel/http/io.hpp"
#include "keel/http/server_state.hpp"
#include "keel/http/wire.hpp"

namespace keel::http {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// How long a keep-alive connection idle at SIGTERM stays open for a request its client may be sending.
constexpr auto kDrainIdle = std::chrono::seconds(1);
// How long a draining listener lets handshakes already under way complete before it takes its backlog and
// closes (new SYNs are dropped meanwhile): a round trip, with room for a loaded machine.
constexpr auto kDrainHandshakes = std::chrono::milliseconds(50);

uint16_t Server::Impl::listen(std::string module, uint16_t port, std::shared_ptr<Router> router,
                              std::shared_ptr<HttpMetrics> metrics) {
  boost::system::error_code ec;
  auto addr = net::ip::make_address(opt.listen, ec);
  if (ec) throw std::runtime_error("listen: not an IP address: '" + opt.listen + "'");
  auto l =
      std::make_unique<Listener>(Listener{std::move(module), port, std::move(router), std::move(metrics)});
  {
    // A plain bind first: SO_REUSEPORT alone would let us share a port another keel already serves.
    tcp::acceptor probe(workers[0]->ctx);
    probe.open(addr.is_v6() ? tcp::v6() : tcp::v4());
    probe.set_option(tcp::acceptor::reuse_address(true));
    probe.bind(tcp::endpoint(addr, port), ec);
    if (ec)
      throw std::runtime_error("cannot listen on " + opt.listen + ":" + std::to_string(port) + " for " +
                               l->module + ": " + ec.message());
    if (port == 0) l->port = probe.local_endpoint().port();
  }
  for (auto& w : workers) {
    auto acc = std::make_unique<tcp::acceptor>(w->ctx);
    acc->open(addr.is_v6() ? tcp::v6() : tcp::v4());
    acc->set_option(tcp::acceptor::reuse_address(true));
    int one = 1;
    ::setsockopt(acc->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    acc->bind(tcp::endpoint(addr, l->port), ec);
    if (!ec) acc->listen(net::socket_base::max_listen_connections, ec);
    if (ec)
      throw std::runtime_error("cannot listen on " + opt.listen + ":" + std::to_string(l->port) + " for " +
                               l->module + ": " + ec.message());
    w->acceptors.emplace_back(std::move(acc), l.get());
  }
  const uint16_t bound = l->port;
  listeners.push_back(std::move(l));
  return bound;
}

net::awaitable<void> Server::Impl::accept_loop(Worker* w, tcp::acceptor* acc, Listener* l) {
  for (;;) {
    auto [ec, sock] = co_await acc->async_accept(use_tuple);
    if (ec) {
      if (!acc->is_open() || ec == net::error::operation_aborted) co_return;
      // Out of descriptors or similar: back off briefly instead of spinning.
      net::steady_timer t(w->ctx, std::chrono::milliseconds(20));
      co_await t.async_wait(use_tuple);
      continue;
    }
    // Draining, a connection the kernel already accepted is still served (begin_drain takes the rest).
    if (open.load(std::memory_order_relaxed) >= opt.max_connections) {
      boost::system::error_code ignore;
      sock.close(ignore);
      continue;
    }
    boost::system::error_code ignore;
    sock.set_option(tcp::no_delay(true), ignore);
    net::co_spawn(w->ctx, serve(w, l, std::move(sock)), net::detached);
  }
}

net::awaitable<void> Server::Impl::sweep(Worker* w) {
  for (;;) {
    w->sweeper.expires_after(std::chrono::milliseconds(100));
    auto [ec] = co_await w->sweeper.async_wait(use_tuple);
    if (ec) co_return;
    const auto now = std::chrono::steady_clock::now();
    Deadlines::this_thread().sweep(now);  // client connections (proxying, health checks)
    for (Connection* c : w->connections) {
      if (c->deadline <= now) {
        boost::system::error_code ignore;
        c->socket->close(ignore);
      }
    }
  }
}

void Server::Impl::begin_drain() {
  if (draining.exchange(true)) return;
  drains_pending.store(static_cast<int>(workers.size()), std::memory_order_release);
  for (auto& w : workers) {
    // New handshakes stop first: the listeners drop new SYNs (their clients' retries meet a closed port:
    // refused at connect), while handshakes already under way complete. Closing a listener resets the
    // connections in its backlog, and a client whose handshake completed just before the close had sent
    // its request on a connection it believed open (1 of ~1,000 per-request connections at a SIGTERM).
    for (auto& [acc, l] : w->acceptors) refuse_new_handshakes(acc->native_handle());
  }
  for (auto& w : workers) {
    net::co_spawn(
        w->ctx,
        [this, wp = w.get()]() -> net::awaitable<void> {
          // Handshakes under way at the signal complete within a round trip.
          net::steady_timer settle(wp->ctx, kDrainHandshakes);
          co_await settle.async_wait(use_tuple);
          // Connections the kernel has already accepted are taken from the backlog and served (closing the
          // listener would reset them); then the listener closes.
          for (auto& [acc, l] : wp->acceptors) {
            boost::system::error_code ec;
            acc->non_blocking(true, ec);
            for (int taken = 0; !ec && taken < 4096; ++taken) {
              tcp::socket sock(wp->ctx);
              acc->accept(sock, ec);
              if (ec) break;
              boost::system::error_code ignore;
              sock.set_option(tcp::no_delay(true), ignore);
              open.fetch_add(1, std::memory_order_relaxed);
              net::co_spawn(wp->ctx, serve(wp, l, std::move(sock), true), net::detached);
            }
            boost::system::error_code ignore;
            acc->close(ignore);
          }
          // A keep-alive connection idle at the signal gets a second more: a request its client sends
          // meanwhile (perhaps already on its way) is answered with Connection: close, instead of meeting a
          // closed socket; then the sweeper closes it. Requests under way are answered as usual.
          const auto idle_until = std::chrono::steady_clock::now() + kDrainIdle;
          for (Connection* c : wp->connections)
            if (!c->busy && !c->partial && c->deadline > idle_until) c->deadline = idle_until;
          drains_pending.fetch_sub(1, std::memory_order_acq_rel);
        },
        net::detached);
  }
  net::co_spawn(workers[0]->ctx, wait_drained(), net::detached);
}

net::awaitable<void> Server::Impl::wait_drained() {
  const auto deadline = std::chrono::steady_clock::now() + opt.shutdown_grace;
  net::steady_timer t(workers[0]->ctx);
  // Every worker has taken its backlog (and counted it) before `open` can say the drain is over.
  while ((drains_pending.load(std::memory_order_acquire) > 0 || open.load() > 0) &&
         std::chrono::steady_clock::now() < deadline) {
    t.expires_after(std::chrono::milliseconds(10));
    co_await t.async_wait(use_tuple);
  }
  for (auto& w : workers) w->ctx.stop();
}

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Server::~Server() = default;

uint16_t Server::listen(std::string module, uint16_t port, std::shared_ptr<Router> router,
                        std::shared_ptr<HttpMetrics> metrics) {
  return impl_->listen(std::move(module), port, std::move(router), std::move(metrics));
}

net::io_context& Server::main_context() { return impl_->workers[0]->ctx; }

void Server::run() {
  for (auto& w : impl_->workers) {
    net::co_spawn(w->ctx, impl_->sweep(w.get()), net::detached);
    for (auto& [acc, l] : w->acceptors)
      net::co_spawn(w->ctx, impl_->accept_loop(w.get(), acc.get(), l), net::detached);
  }
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->workers.size(); ++i) {
    threads.emplace_back([w = impl_->workers[i].get()] {
      auto guard = net::make_work_guard(w->ctx);
      io::ReactorBinding binding(w->ctx);
      w->ctx.run();
      drop_idle_connections();
    });
  }
  {
    auto guard = net::make_work_guard(impl_->workers[0]->ctx);
    io::ReactorBinding binding(impl_->workers[0]->ctx);
    impl_->workers[0]->ctx.run();
    drop_idle_connections();
  }
  for (auto& t : threads) t.join();
}

void Server::shutdown() {
  net::post(impl_->workers[0]->ctx, [impl = impl_.get()] { impl->begin_drain(); });
}

int64_t Server::open_connections() const { return impl_->open.load(); }

}  // namespace keel::http
