// Configuration of an Outbox: where it lives, how big it may grow, how
// samples are grouped into batches and which sinks receive them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace tally::queue {

// When staged samples are formed into a batch. A batch is formed as soon as
// one limit is reached; a single append larger than the limits is split over
// several batches. An append that fits in one batch is kept whole: the batch
// before it is formed early rather than take part of it.
struct BatchLimits {
  // At most this many samples per batch. Must be >= 1.
  std::uint32_t max_samples = 10000;
  // At most this many payload bytes (records joined by '\n') per batch,
  // except that a single sample larger than this is a batch of its own.
  std::uint64_t max_bytes = 4ull << 20;
  // Form a batch once the oldest staged sample is this old (checked at each
  // append). 0: every append forms its batches at once.
  std::uint64_t max_age_ns = 0;
};

struct OutboxOptions {
  // The database file, e.g. /var/lib/tally/outbox.db. Its directory is
  // created if missing; -wal and -shm files live beside it.
  std::filesystem::path path;
  // Upper bound on stored bytes: payloads of formed batches (data and gap)
  // plus staged records plus dead-letter payloads. See Outbox::append.
  std::uint64_t cap_bytes = 256ull << 20;
  BatchLimits batch;
  // Names of the configured destinations; non-empty, no duplicates. A name
  // not seen before receives the batches formed from this open on; a stored
  // name that is missing here has its pending deliveries dropped (logged).
  std::vector<std::string> sinks{"default"};
  // Store payloads zstd-compressed (level 1). Off by default, as tallyd
  // opens it: its compact records (userspace/samples/compact_records.h) are
  // small already, and the CPU would cost more than the bytes it saves. On
  // for verbose records such as JSON lines, which shrink ~10x for ~1 ms of
  // CPU per 1,000 samples, less than writing them costs.
  bool compress = false;
};

}  // namespace tally::queue
