#pragma once
// A socket read that remembers that it drained the socket.
//
// Asio tries every read at once before it waits for epoll (a "speculative" read). After a short read (the
// read took everything the peer had sent) that first try is a recv that fails with EAGAIN: the server's read
// of the next request right after it answered, the client's read of an answer right after it sent the
// request. That is two wasted system calls per proxied request, and nginx makes neither: it remembers a short
// read and waits for epoll's next edge.
//
// Asio's reactor can do the same: an operation that reports "done and exhausted" turns off the speculative
// try for the next operation of its kind on that socket, until epoll reports the socket ready again. Asio's
// own send operation reports a short write that way; its receive operation reports only the end of the
// stream. async_read_short is async_read_some with a receive operation that also reports a short read. The
// report and epoll's edges are taken in turn on the socket's one I/O thread, so data that arrives after the
// short read always turns the try back on: no data is waited for in vain.
//
// The end of the stream is different: Asio does not ask epoll for EPOLLRDHUP, and a peer's FIN that came with
// the last data gives no edge of its own, so after a short read the FIN may sit unread with no wake-up to
// come. A read that must see an end which may already be there (within a message: a body delimited by the
// close, a peer that stopped halfway) passes `speculate`, and tries once before it waits, as Asio would. Only
// the first read of a message, where the peer has been waiting for our side's answer, skips the try.
//
// The operation is built on Asio 1.81's reactor interface (Debian 12's Boost), which is internal to Asio;
// without the fast paths (fast_paths.hpp: another version or reactor, KEEL_FAST_PATHS=OFF, the sanitizer
// builds) this is the plain async_read_some.
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "keel/http/fast/fast_paths.hpp"

#ifdef KEEL_HAVE_FAST_PATHS
#define KEEL_SHORT_READ 1

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <cerrno>

#include "keel/http/fast/nocancel.hpp"
#endif

namespace keel::http::io {

#ifdef KEEL_SHORT_READ
namespace short_read_detail {

namespace asio = boost::asio;
using asio::detail::reactor;
using asio::detail::reactor_op;

// The socket's implementation (descriptor and reactor data), which basic_socket keeps protected.
struct SocketAccess : asio::ip::tcp::socket {
  static auto& implementation(asio::ip::tcp::socket& s) {
    return (s.*(&SocketAccess::impl_)).get_implementation();
  }
};

// The reactor of the context the calling thread runs (bound by a ReactorBinding while it runs it), else
// looked up: use_service takes a lock.
struct ThreadReactor {
  asio::execution_context* context = nullptr;
  reactor* r = nullptr;
};
inline ThreadReactor& thread_reactor() {
  thread_local ThreadReactor t;
  return t;
}
inline reactor& reactor_of(asio::ip::tcp::socket& s) {
  asio::execution_context& c = asio::query(s.get_executor(), asio::execution::context);
  const ThreadReactor& t = thread_reactor();
  if (&c == t.context) return *t.r;
  return asio::use_service<reactor>(c);
}

// Per-operation cancellation, as Asio's socket operations have it.
class Cancellation {
 public:
  Cancellation(reactor* r, reactor::per_descriptor_data* data, int fd) : reactor_(r), data_(data), fd_(fd) {}
  void operator()(asio::cancellation_type_t type) {
    if (!!(type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                   asio::cancellation_type::total)))
      reactor_->cancel_ops_by_key(fd_, *data_, reactor::read_op, this);
  }

 private:
  reactor* reactor_;
  reactor::per_descriptor_data* data_;
  int fd_;
};

template <typename Handler, typename IoExecutor>
class Op : public reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(Op);

  Op(int fd, asio::mutable_buffer buffer, Handler& handler, const IoExecutor& io_ex)
      : reactor_op(boost::system::error_code(), &Op::do_perform, &Op::do_complete),
        fd_(fd),
        buffer_(buffer),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status do_perform(reactor_op* base) {
    Op* o = static_cast<Op*>(base);
    if (o->buffer_.size() == 0) return done;  // as Asio: an empty read completes at once, and is no end
    const ssize_t n = sys::recv(o->fd_, o->buffer_.data(), o->buffer_.size());
    if (n > 0) {
      o->bytes_transferred_ = static_cast<size_t>(n);
      return o->bytes_transferred_ < o->buffer_.size() ? done_and_exhausted : done;
    }
    if (n == 0) {
      o->ec_ = asio::error::eof;
      return done_and_exhausted;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) return not_done;
    o->ec_ = boost::system::error_code(errno, asio::error::get_system_category());
    return done;
  }

  // As Asio's own receive operation completes.
  static void do_complete(void* owner, asio::detail::operation* base, const boost::system::error_code&,
                          std::size_t) {
    Op* o = static_cast<Op*>(base);
    ptr p = {std::addressof(o->handler_), o, o};
    asio::detail::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    asio::detail::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                                   o->bytes_transferred_);
    p.h = std::addressof(handler.handler_);
    p.reset();
    if (owner) {
      asio::detail::fenced_block b(asio::detail::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  int fd_;
  asio::mutable_buffer buffer_;
  Handler handler_;
  asio::detail::handler_work<Handler, IoExecutor> work_;
};

struct Initiate {
  template <typename Handler>
  void operator()(Handler&& h, asio::ip::tcp::socket* socket, asio::mutable_buffer buffer,
                  bool speculate) const {
    using Executor = asio::ip::tcp::socket::executor_type;
    using Decayed = std::decay_t<Handler>;
    using OpType = Op<Decayed, Executor>;
    Decayed handler(std::forward<Handler>(h));
    // Asio's operations need a descriptor in non-blocking mode, which it sets on the first one.
    boost::system::error_code ec;
    if (!socket->non_blocking()) socket->non_blocking(true, ec);
    auto& impl = SocketAccess::implementation(*socket);
    if (ec || impl.socket_ == asio::detail::invalid_socket) {
      // Fail the way Asio's own read would: through the handler, never inline.
      socket->async_read_some(buffer, std::move(handler));
      return;
    }
    reactor& r = reactor_of(*socket);
    const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
    auto slot = asio::get_associated_cancellation_slot(handler);
    typename OpType::ptr p = {std::addressof(handler), OpType::ptr::allocate(handler), nullptr};
    p.p = new (p.v) OpType(impl.socket_, buffer, handler, socket->get_executor());
    if (slot.is_connected())
      p.p->cancellation_key_ = &slot.template emplace<Cancellation>(&r, &impl.reactor_data_, impl.socket_);
    // The try Asio would make, whatever a short read turned off: completes through the scheduler, as its own.
    if (speculate && OpType::do_perform(p.p) != reactor_op::not_done) {
      r.post_immediate_completion(p.p, is_continuation);
    } else {
      r.start_op(reactor::read_op, impl.socket_, impl.reactor_data_, p.p, is_continuation, true);
    }
    p.v = p.p = nullptr;
  }
};

}  // namespace short_read_detail
#endif

// async_read_some(buffer) on a TCP socket, with a short read remembered (see above). `speculate`: try to
// read before waiting even after a short read, for a read that must see an end of stream already there.
template <typename Token>
auto async_read_short(boost::asio::ip::tcp::socket& socket, boost::asio::mutable_buffer buffer,
                      bool speculate, Token&& token) {
#ifdef KEEL_SHORT_READ
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      short_read_detail::Initiate{}, token, &socket, buffer, speculate);
#else
  (void)speculate;
  return socket.async_read_some(buffer, std::forward<Token>(token));
#endif
}

// While it lives, the calling thread runs `ctx` (and no other context): reads find its reactor without a
// lookup.
class ReactorBinding {
 public:
  explicit ReactorBinding([[maybe_unused]] boost::asio::io_context& ctx) {
#ifdef KEEL_SHORT_READ
    auto& t = short_read_detail::thread_reactor();
    t.context = &ctx;
    t.r = &boost::asio::use_service<short_read_detail::reactor>(ctx);
#endif
  }
  ~ReactorBinding() {
#ifdef KEEL_SHORT_READ
    short_read_detail::thread_reactor() = {};
#endif
  }
  ReactorBinding(const ReactorBinding&) = delete;
  ReactorBinding& operator=(const ReactorBinding&) = delete;
};

}  // namespace keel::http::io
