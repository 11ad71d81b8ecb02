#include "keel/http/deadlines.hpp"

namespace keel::http {

void Deadlines::add(Watched* w) {
  w->prev = nullptr;
  w->next = head_;
  if (head_) head_->prev = w;
  head_ = w;
}

void Deadlines::remove(Watched* w) {
  if (w->prev)
    w->prev->next = w->next;
  else if (head_ == w)
    head_ = w->next;
  if (w->next) w->next->prev = w->prev;
  w->prev = w->next = nullptr;
}

void Deadlines::sweep(std::chrono::steady_clock::time_point now) {
  for (Watched* w = head_; w; w = w->next) {
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
