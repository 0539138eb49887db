// How much batch work the collector holds at once: requests admitted and
// not yet answered (their bodies being read, waiting for or in the decode
// pool, decoded and waiting for or in the writer), and the bytes they hold.
// The writer stores batches one at a time; without a bound, clients faster
// than it fill memory with decoded requests (200 clients posting 8 MB each
// took the collector to 3.6 GB). With one, the excess is refused with a 503
// that the agent retries after a while, and nothing accepted is lost.
//
// A request is admitted with the size of its body, before the body is read
// (a chunked one with the body limit, then what it turned out to be), and
// after decoding holds the size of the decoded request instead. A request
// alone is always admitted, whatever its size, so that the largest valid
// body can get through.
//
// Thread safety: every member may be called from any thread; a Ticket
// belongs to one thread at a time and may outlive the IngestBudget.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

namespace tally::collector {

class IngestBudget {
 public:
  struct Limits {
    std::uint64_t requests = 256;
    std::uint64_t bytes = 256u << 20;
  };
  struct Usage {
    std::uint64_t requests = 0;
    std::uint64_t bytes = 0;
  };

 private:
  struct State {
    explicit State(Limits l) : limits(l) {}
    std::mutex mu;
    const Limits limits;
    Usage used;
  };

 public:
  // A place in the budget; given back when destroyed. An empty Ticket holds
  // nothing (admission refused, or moved from).
  class Ticket {
   public:
    Ticket() = default;
    ~Ticket();
    Ticket(Ticket&& other) noexcept;
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

    explicit operator bool() const { return state_ != nullptr; }
    std::uint64_t bytes() const { return bytes_; }
    // Holds `bytes` instead: always possible when shrinking; when growing,
    // only if the budget has room (or this is the only request). False:
    // nothing changed.
    bool resize(std::uint64_t bytes);

   private:
    friend class IngestBudget;
    Ticket(std::shared_ptr<State> state, std::uint64_t bytes)
        : state_(std::move(state)), bytes_(bytes) {}
    void release();

    std::shared_ptr<State> state_;
    std::uint64_t bytes_ = 0;
  };

  explicit IngestBudget(Limits limits) : state_(std::make_shared<State>(limits)) {}

  // A ticket holding `bytes`, or an empty one when the budget has no room.
  Ticket admit(std::uint64_t bytes);

  Limits limits() const { return state_->limits; }
  Usage usage() const;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace tally::collector
