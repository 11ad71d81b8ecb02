#pragma once
// recv and sendmsg without glibc's thread-cancellation wrapper. In a multi-threaded process glibc brackets
// every call that is a cancellation point with two atomic updates of the thread's cancellation state (about
// 1% of the gateway's CPU per proxied request in perf). keel never cancels a thread, so the hot path's socket
// calls go straight to the kernel; errors come back through errno as usual.
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>

#include "keel/http/fast/fast_paths.hpp"

namespace keel::http::sys {

#ifndef KEEL_HAVE_FAST_PATHS
// Without the fast paths (the sanitizer builds among them): libc's calls, which the sanitizers intercept
// (they check the buffers).
inline ssize_t recv(int fd, void* data, size_t size) {
  ssize_t n;
  do {
    n = ::recv(fd, data, size, 0);
  } while (n < 0 && errno == EINTR);
  return n;
}

inline ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  ssize_t n;
  do {
    n = ::sendmsg(fd, msg, flags);
  } while (n < 0 && errno == EINTR);
  return n;
}
#else
inline ssize_t recv(int fd, void* data, size_t size) {
  long n;
  do {
    n = ::syscall(SYS_recvfrom, fd, data, size, 0, nullptr, nullptr);
  } while (n < 0 && errno == EINTR);
  return static_cast<ssize_t>(n);
}

inline ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  long n;
  do {
    n = ::syscall(SYS_sendmsg, fd, msg, flags);
  } while (n < 0 && errno == EINTR);
  return static_cast<ssize_t>(n);
}
#endif

}  // namespace keel::http::sys
