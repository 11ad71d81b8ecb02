// Raw argon2id hashes per second through libsodium (the library keel uses), at given parameters, on N
// threads for a fixed time: the reference bench/auth.sh compares keel's login throughput with.
// usage: keel_bench_argon2 MEMORY_KIB ITERATIONS THREADS SECONDS
#include <sodium.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 5 || sodium_init() < 0) {
    std::fprintf(stderr, "usage: %s MEMORY_KIB ITERATIONS THREADS SECONDS\n", argv[0]);
    return 2;
  }
  const size_t mem = std::strtoull(argv[1], nullptr, 10) * 1024;
  const unsigned long long ops = std::strtoull(argv[2], nullptr, 10);
  const int threads = std::atoi(argv[3]);
  const double seconds = std::atof(argv[4]);
  std::atomic<long> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> pool;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      char out[crypto_pwhash_STRBYTES];
      const char pw[] = "correct horse battery";
      while (!stop.load()) {
        if (crypto_pwhash_str_alg(out, pw, sizeof pw - 1, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
          std::abort();
        done.fetch_add(1);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : pool) t.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%.2f\n", done.load() / elapsed);
  return 0;
}
