#pragma once
// Whether the fast paths in this folder are built in (README.md here says what each buys and what it rests
// on). They are on for Asio 1.81 (Debian 12's Boost) on epoll, and off, each replaced by the plain call it
// stands for, when the build says KEEL_FAST_PATHS=OFF (KEEL_PLAIN_IO: the sanitizer and fuzzing builds too)
// or when Asio is another version or reactor: a Boost upgrade turns them off with a compiler warning and a
// start-up log field, never silently, and never by running code written for another Asio.
#include <boost/asio/detail/config.hpp>
#include <boost/version.hpp>

#ifdef KEEL_HAVE_FAST_PATHS
#error \
    "KEEL_HAVE_FAST_PATHS is decided here, not by the build: -DKEEL_FAST_PATHS=OFF turns the fast paths off"
#endif
#if !defined(KEEL_PLAIN_IO) && BOOST_VERSION == 108100 && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
#define KEEL_HAVE_FAST_PATHS 1
#elif !defined(KEEL_PLAIN_IO)
#warning "keel's fast paths (src/keel/http/fast) are off: they are written for Asio 1.81 on epoll"
#endif

namespace keel::http::fast {

#ifdef KEEL_HAVE_FAST_PATHS
inline constexpr bool kOn = true;
inline constexpr const char* kState = "on";
#elif defined(KEEL_PLAIN_IO)
inline constexpr bool kOn = false;
inline constexpr const char* kState = "off (a plain-I/O build: KEEL_FAST_PATHS=OFF, or a sanitizer's)";
#else
inline constexpr bool kOn = false;
inline constexpr const char* kState = "off (written for Asio 1.81 on epoll; this is another)";
#endif

// The concurrency hint of an I/O thread's io_context: the reactor's per-socket locks are left out, as one
// thread runs each context and only it touches that context's sockets (posting from other threads stays
// safe: the scheduler keeps its lock). This is Asio's public interface, so the sanitizer builds keep it
// (TSan then checks that rule); only KEEL_FAST_PATHS=OFF (KEEL_IO_LOCKS) takes Asio's default.
#ifdef KEEL_IO_LOCKS
inline constexpr int kIoThreadHint = BOOST_ASIO_CONCURRENCY_HINT_DEFAULT;
#else
inline constexpr int kIoThreadHint = BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO;
#endif

}  // namespace keel::http::fast
