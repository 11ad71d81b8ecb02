#pragma once
// The registry as other modules see it (the registry module implements it: registry/index_watch.hpp): the
// instances registered and passing, the prefixes they own, and the registry's monotonic index, which moves
// with every change, so a reader can wait for the next one instead of polling.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace keel::db {
class Session;
}

namespace keel::module {

struct LiveInstance {
  std::string module;
  std::string url;
  std::string health_path;                 // empty: the module's default
  std::vector<std::string> public_routes;  // "METHOD /pattern": no token needed at the gateway
};

struct RegistrySnapshot {
  int64_t index = 0;
  std::vector<std::pair<std::string, std::string>> owners;  // prefix -> owning module
  std::vector<LiveInstance> live;                           // passing and not lapsed
};

class RegistryView {
 public:
  virtual ~RegistryView() = default;
  // The registry as one read in `s` finds it.
  virtual RegistrySnapshot snapshot(db::Session& s) const = 0;
  // The index as this process last saw it.
  virtual int64_t index() const = 0;
  // Returns once the index passes `index` or at `deadline`, whichever is first; the index then.
  virtual boost::asio::awaitable<int64_t> wait_past(int64_t index,
                                                    std::chrono::steady_clock::time_point deadline) = 0;
  // A write in this process moved the index to `index` (committed): waiters wake at once.
  virtual void observe(int64_t index) = 0;
};

}  // namespace keel::module
