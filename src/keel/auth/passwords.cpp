#include "keel/auth/passwords.hpp"

#include <sodium.h>

#include <stdexcept>

#include "keel/auth/crypto.hpp"

namespace keel::auth {

PasswordHasher::PasswordHasher(uint32_t memory_kib, uint32_t iterations, size_t threads, size_t queue)
    : opslimit_(iterations), memlimit_(static_cast<size_t>(memory_kib) * 1024) {
  ensure_sodium();
  pool_ = std::make_unique<WorkerPool>("keel-argon2", threads, queue);
  dummy_ = hash_sync(random_bytes(16));
}

std::string PasswordHasher::hash_sync(const std::string& password) const {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), opslimit_, memlimit_,
                            crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw std::runtime_error("argon2id: out of memory");
  return out;
}

bool PasswordHasher::verify_sync(const std::string& stored, const std::string& password) const {
  const std::string& target = stored.empty() ? dummy_ : stored;
  const bool ok = crypto_pwhash_str_verify(target.c_str(), password.data(), password.size()) == 0;
  return ok && !stored.empty();
}

bool PasswordHasher::needs_rehash(const std::string& stored) const {
  return crypto_pwhash_str_needs_rehash(stored.c_str(), opslimit_, memlimit_) != 0;
}

boost::asio::awaitable<std::string> PasswordHasher::hash(const std::string& password) {
  co_return co_await offload(*pool_, [&] { return hash_sync(password); });
}

boost::asio::awaitable<bool> PasswordHasher::verify(const std::string& stored, const std::string& password) {
  co_return co_await offload(*pool_, [&] { return verify_sync(stored, password); });
}

}  // namespace keel::auth
