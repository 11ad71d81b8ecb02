#pragma once
// Each I/O thread's view of the gateway's route table, and its round-robin counter: the table is read without
// a lock unless it changed (route_table.cpp), and the proxy spreads requests over instances (proxy.cpp).
#include <cstdint>
#include <memory>

#include "keel/gateway/gateway.hpp"

namespace keel::gateway {

struct ThreadState {
  const Gateway* owner = nullptr;
  uint64_t version = ~0ULL;
  std::shared_ptr<const RouteTable> table;
  uint64_t round_robin = 0;
};
inline ThreadState& thread_state() {
  thread_local ThreadState s;
  return s;
}

}  // namespace keel::gateway
