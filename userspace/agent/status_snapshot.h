// What tallyd knows of the parts that live on other threads (the outbox
// and the sinks), taken in one piece on the store thread after each
// interval's append and after each delivery attempt. `tally status`, the
// /metrics page, the health rules and the shutdown drain all read the latest
// one on the main thread, which so never waits on the outbox's lock (held
// across fsync) or on the disk.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "shipping/shipper.h"
#include "tally/queue/stats.h"

namespace tally::agent {

struct StatusSnapshot {
  std::uint64_t taken_ns = 0;
  // nullopt when reading the figures failed: outbox_error says why.
  std::optional<queue::OutboxStats> outbox;
  std::string outbox_error;
  std::vector<shipping::SinkStatus> sinks;  // in configuration order

  // Nothing formed is waiting for a sink, and nothing is staged.
  bool drained() const {
    return outbox && outbox->pending_batches == 0 && outbox->staged_samples == 0;
  }
  std::uint64_t pending_batches() const { return outbox ? outbox->pending_batches : 0; }
};

}  // namespace tally::agent
