#pragma once
// argon2id password hashing (libsodium) on a bounded pool of its own, never on an I/O thread.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <memory>
#include <string>

#include "keel/core/worker_pool.hpp"

namespace keel::auth {

// Note for every coroutine in keel: GCC 12 destroys some temporaries of a co_await expression twice, so
// coroutines take their arguments by const reference, callers pass named objects, and lambdas handed to
// offload() or Database::read/write capture by reference.
class PasswordHasher {
 public:
  PasswordHasher(uint32_t memory_kib, uint32_t iterations, size_t threads, size_t queue);
  // The awaitable forms throw a 503 (Retry-After) when the pool's queue is full.
  boost::asio::awaitable<std::string> hash(const std::string& password);
  // Verifies against `stored`; when it is empty (unknown account) a dummy hash is verified instead, so the
  // answer takes as long either way.
  boost::asio::awaitable<bool> verify(const std::string& stored, const std::string& password);
  bool needs_rehash(const std::string& stored) const;
  std::string hash_sync(const std::string& password) const;
  bool verify_sync(const std::string& stored, const std::string& password) const;

 private:
  uint64_t opslimit_;
  size_t memlimit_;
  std::unique_ptr<WorkerPool> pool_;
  std::string dummy_;
};

}  // namespace keel::auth
