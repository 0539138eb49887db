// The connections a listener holds, bounded in total and per peer.
//
// A new connection is always admitted, so that a client that has just
// connected (an operator's `tally status`, a Prometheus scrape) is served
// however many connections others hold. When admitting it takes its peer
// over the per-peer bound, the peer's own oldest connection is closed; when
// it takes the table over the total bound, the oldest connection of the peer
// holding the most is. Idle connections (waiting for a request) go before
// busy ones (a request being answered). So a peer that opens connections
// without end only ever closes its own, and one holding many cannot starve
// the others: the bounds cap the descriptors and memory a listener takes.
//
// "Peer" is whatever the listener can tell apart: the remote address of a
// TCP connection, the user id of a Unix socket's client.
//
// Pure bookkeeping: closing is the caller's callback, run from admit() or
// close_oldest_idle(); nothing else here does I/O apart from the log lines
// (the first eviction, then at most one summary a minute). Not thread-safe:
// use it from the listener's io_context thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tally::agent {

class ConnectionTable {
 public:
  struct Limits {
    std::size_t total;
    std::size_t per_peer;  // below total: no single peer can fill the table
  };
  using Id = std::uint64_t;
  using Close = std::function<void()>;

  // `listener` names it in log lines: "control socket".
  ConnectionTable(std::string listener, Limits limits);

  // Registers a connection from `peer` (idle), closing one other first if a
  // bound requires it. `close` must end the connection; remove() may follow.
  Id admit(const std::string& peer, Close close);
  // Marks a connection as answering a request (not closed at a bound while
  // an idle one can be) or as waiting for the next.
  void set_busy(Id id, bool busy);
  // The connection ended. Unknown ids (already closed here) are ignored.
  void remove(Id id);
  // Closes the oldest idle connection of any peer, to free a descriptor
  // when accepting fails for want of one. False if none is idle.
  bool close_oldest_idle();
  // Closes every connection (shutdown).
  void close_all();

  std::size_t size() const { return entries_.size(); }
  // Connections closed to stay within the bounds, since start.
  std::uint64_t evicted() const { return evicted_; }
  const Limits& limits() const { return limits_; }

 private:
  struct Entry {
    Id id;
    std::string peer;
    Close close;
    bool busy = false;
  };

  std::size_t count_of(const std::string& peer) const;
  // The peer holding the most connections (ties: the one connected first).
  std::string heaviest_peer() const;
  // Closes the oldest connection of `peer` (any peer if empty), idle first.
  void evict_from(const std::string& peer, const char* bound);
  void close_entry(std::size_t index);
  void report(const std::string& peer, const char* bound);

  std::string listener_;
  Limits limits_;
  std::vector<Entry> entries_;  // oldest first; a few dozen at most
  Id next_id_ = 1;
  std::uint64_t evicted_ = 0;
  std::uint64_t evicted_unreported_ = 0;
  std::chrono::steady_clock::time_point last_report_{};
  bool reported_ = false;
};

}  // namespace tally::agent
