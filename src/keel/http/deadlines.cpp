#include "keel/http/deadlines.hpp"

namespace keel::http {

void Deadlines::sweep(std::chrono::steady_clock::time_point now) {
  for (Watched* w : watched_) {
    if (w->deadline <= now && w->socket && w->socket->is_open()) {
      boost::system::error_code ignore;
      w->expired = true;
      w->socket->close(ignore);
    }
  }
}

Deadlines& Deadlines::this_thread() {
  thread_local Deadlines d;
  return d;
}

}  // namespace keel::http
