#pragma once
// A bounded pool of threads for blocking work (database calls, password hashing). Coroutines on I/O threads
// await it with offload(); when the queue is full the caller gets a 503 with Retry-After, not a pile-up.
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include "keel/core/error.hpp"

namespace keel {

class WorkerPool {
 public:
  struct Task {
    virtual ~Task() = default;
    virtual void run() = 0;
  };

  WorkerPool(std::string name, size_t threads, size_t max_queue);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues the task; false when the queue is full or the pool is stopping.
  bool try_post(std::unique_ptr<Task> task);
  // Finishes queued tasks and joins the threads.
  void stop();
  size_t threads() const { return threads_.size(); }
  size_t queued() const;

  template <class F>
  bool try_post_fn(F&& f) {
    struct Impl final : Task {
      std::decay_t<F> fn;
      explicit Impl(F&& f) : fn(std::forward<F>(f)) {}
      void run() override { fn(); }
    };
    return try_post(std::make_unique<Impl>(std::forward<F>(f)));
  }

 private:
  void loop();
  std::string name_;
  size_t max_queue_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Task>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Runs f() on the pool and resumes the awaiting coroutine on its own executor with f's result (or exception).
template <class F>
boost::asio::awaitable<std::invoke_result_t<F>> offload(WorkerPool& pool, F f) {
  using R = std::invoke_result_t<F>;
  using Value = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
  auto ex = co_await boost::asio::this_coro::executor;
  auto initiate = [&pool, ex](auto handler, F fn) {
    auto work = boost::asio::make_work_guard(ex);
    auto state = std::make_shared<decltype(handler)>(std::move(handler));
    // `ep` is moved, never copied, on the worker: the exception's last reference goes on the awaiting side.
    auto finish = [ex, state](std::exception_ptr ep, Value v) {
      boost::asio::post(ex, [state, ep = std::move(ep), v = std::move(v)]() mutable {
        (*state)(std::move(ep), std::move(v));
      });
    };
    bool queued = pool.try_post_fn([fn = std::move(fn), finish, work = std::move(work)]() mutable {
      std::exception_ptr ep;
      Value v{};
      try {
        if constexpr (std::is_void_v<R>) {
          fn();
        } else {
          v = fn();
        }
      } catch (...) {
        ep = std::current_exception();
      }
      finish(std::move(ep), std::move(v));
    });
    if (!queued) finish(std::make_exception_ptr(Error::unavailable("server busy, try again", 1)), Value{});
  };
  Value v = co_await boost::asio::async_initiate<decltype(boost::asio::use_awaitable),
                                                 void(std::exception_ptr, Value)>(
      initiate, boost::asio::use_awaitable, std::move(f));
  if constexpr (!std::is_void_v<R>) co_return std::move(v);
}

}  // namespace keel
