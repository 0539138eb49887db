// A decoded POST /v1/batches body: what the request decoder produces and the
// batch store consumes. Plain data, no behaviour.
//
// Field meanings are those of docs/protocol.md; this header only says how the
// collector holds them. Every integer here fits in SQLite's signed 64-bit
// INTEGER: the decoder rejects larger values, so the store never has to.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace tally::collector {

// One sample of a samples batch, as stored: the columns the queries filter
// and aggregate on, and the sample object itself as compact JSON (unknown
// fields kept, key order and number spelling as received) with a process's
// names taken out: with_names(json, names_at, names) (json_text.h) is the
// sample as received.
struct StoredSample {
  std::uint64_t index = 0;  // index within the batch
  std::string host;
  std::uint64_t ts_ns = 0;
  std::uint64_t interval_ns = 0;
  // A cgroup line (protocol version 3): kept as its text, no pid.
  bool is_cgroup = false;
  std::optional<std::uint32_t> pid;            // process samples only
  std::optional<std::uint64_t> start_time_ns;  // process samples only
  std::optional<std::uint64_t> cpu_ns;         // process samples only
  std::uint64_t rss_bytes = 0;                 // process samples only
  bool exited = false;                         // process samples only
  std::uint32_t ncpu = 0;                      // host samples only
  std::uint64_t busy_ns = 0;                   // host samples only
  std::uint32_t processes = 0;                 // host samples only
  std::uint64_t dropped_updates = 0;           // host samples only
  // This release's fields (samples::Form::current): process wait_ns; host
  // steal_ns to bpf_run_ns. `extended` says the sample carried them.
  std::uint64_t wait_ns = 0;
  std::uint64_t steal_ns = 0;
  std::uint64_t psi_some_ns = 0;
  std::uint64_t psi_full_ns = 0;
  std::int64_t unaccounted_ns = 0;
  std::uint64_t bpf_run_ns = 0;
  bool extended = false;
  // Whether `json` is exactly what tallyd's writer makes of the fields
  // above (and the names stood where it puts them, or were left out): then
  // the store keeps the fields only (sample_chunk.h).
  bool canonical = false;
  // Process samples: the comm, cmdline and cgroup members as JSON text
  // (`"comm":"sh","cmdline":"sh -c x","cgroup":"/"`, in the order received),
  // or empty when the sample left them out to refer to names sent before
  // (protocol version 2); the store then uses the names it holds.
  std::string names;
  // Process samples: the offset in json where the names stood (the first
  // of them, if others came between), or before the closing brace when
  // they were left out.
  std::size_t names_at = 0;
  std::string json;  // without the names
  bool refers_to_names() const { return pid.has_value() && names.empty(); }
};

// A samples batch, or one piece of it (after a 413 the agent splits).
struct SamplesPiece {
  std::uint64_t first_index = 0;    // batch index of samples[0]
  std::uint64_t batch_samples = 0;  // samples in the whole batch
  std::vector<StoredSample> samples;
};

// The agent whose data an agent continues after its outbox was lost: the
// predecessor's seqs up to last_seq that the collector does not hold are
// lost.
struct Predecessor {
  std::string agent_id;
  std::uint64_t last_seq = 0;
  bool operator==(const Predecessor&) const = default;
};

// Samples the agent declares lost. first_seq = last_seq = 0: lost before
// they were given a seq, or (with a predecessor) seqs of the predecessor.
struct GapRecord {
  std::uint64_t first_seq = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t samples = 0;
  std::string reason;
  std::uint64_t time_ns = 0;
  std::string detail;
  std::optional<Predecessor> predecessor;
};

struct BatchRequest {
  std::string agent_id;
  std::string host;
  std::uint64_t seq = 0;
  std::variant<SamplesPiece, GapRecord> body;
  // The client's User-Agent ("tallyd/0.4.0"), printable ASCII, cut to 64
  // bytes by the server: shown as the agent's software.
  std::string software;
};

}  // namespace tally::collector
