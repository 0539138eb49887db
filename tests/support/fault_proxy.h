// Test helper: an HTTP/1.1 proxy on loopback that forwards requests to an
// upstream server, or injects the faults a network and a server can show.
// Runs on its own threads inside the test process; switch faults at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "loopback_server.h"

namespace tally::test {

class FaultProxy {
 public:
  enum class Mode {
    pass,          // forward to upstream
    error_500,     // answer 500 without forwarding
    throttle_429,  // answer 429 with Retry-After: 1
    slow,          // forward, then hold the response longer than the client waits
    reset_body,    // read half of the body, then reset the connection
    reject_400,    // answer 400 (a permanent rejection) without forwarding
    limit_413,     // 413 for bodies above size_limit bytes, else forward
  };

  explicit FaultProxy(std::uint16_t upstream_port);

  std::uint16_t port() const { return server_.port(); }
  void set_mode(Mode mode) { mode_.store(mode); }
  void set_upstream(std::uint16_t port) { upstream_port_.store(port); }
  void set_slow_delay_ms(int ms) { slow_delay_ms_.store(ms); }
  void set_size_limit(std::size_t bytes) { size_limit_.store(bytes); }
  // With reject_400: only the next N requests get 400, then back to pass.
  void reject_next(int n) {
    reject_budget_.store(n);
    set_mode(Mode::reject_400);
  }

  // Requests seen per outcome, for assertions that a fault was exercised.
  std::uint64_t forwarded() const { return forwarded_.load(); }
  std::uint64_t faulted() const { return faulted_.load(); }

 private:
  void serve(int client);

  std::atomic<std::uint16_t> upstream_port_;
  std::atomic<Mode> mode_{Mode::pass};
  std::atomic<int> slow_delay_ms_{6000};
  std::atomic<std::size_t> size_limit_{1 << 20};
  std::atomic<int> reject_budget_{0};
  std::atomic<std::uint64_t> forwarded_{0};
  std::atomic<std::uint64_t> faulted_{0};
  LoopbackServer server_;  // last: its threads use the members above
};

}  // namespace tally::test
