// How the collector stores samples: a run of one batch's samples, of one
// host, as one blob of integers ("chunk"), not a row of JSON per sample.
//
// Why: a stored sample used to be a ~300-byte row (its JSON, three indexes).
// What varies from one interval to the next is a handful of integers; the
// host and the interval are the same for the whole run, and a process's
// pid, start time and names are stored once per incarnation (the names
// table). A chunk holds per sample a tag, the process's names row as a
// delta from the previous sample's, cpu_ns and RSS in pages: 6 to 10 bytes
// before zstd.
//
// Exactness: /v1/samples serves each sample as received. A sample is stored
// as integers only when tallyd's own writer (samples/json_line.h), given
// those integers, writes back exactly the text received; any other (another
// spelling, key order, unknown fields) keeps its text as well ("verbatim"),
// beside the integers the queries use.
//
// Format (version 4; versions 2 and 3 are read too): a version byte, a coding byte (0 as is, 1
// zstd), then the sample count and seven streams, each its length and its bytes; every number a
// varint (tally/varint.h). Per sample, in order:
//   tags      bit 0 host sample (else process)   1 exited       2 names at end
//             3 ts differs from the previous sample's (always on the first)
//             4 interval differs likewise        5 RSS in bytes (else 4 KiB pages)
//             6 verbatim text follows
//             7 extended: this release's fields follow (format 3)
//             8 cgroup line (format 4): with bits 0 and 6, kept as its text
//   times     [ts_ns: the first absolute, then a zigzag delta] [interval_ns]
//   names     process: the names row as a zigzag delta from the previous one
//   cpu       process: cpu_ns [wait_ns]
//   rss       process: RSS in pages or bytes
//   host      host: ncpu, busy_ns, processes, dropped_updates [steal_ns,
//             psi_some_ns, psi_full_ns, zigzag unaccounted_ns, bpf_run_ns]
//   verbatim  [names_at, length, bytes]
// Streams of like values (an interval's tags and name deltas are nearly all
// the same) are what zstd (level 3) compresses well: measured on four hosts
// of the realistic mix for 300 intervals, the database went from about 13
// to about 11 bytes per sample against one stream of whole samples unpacked.
// Decoding checks every length and count, so a damaged blob is an error
// that names the chunk, never a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "collector/batch_request.h"
#include "tally/result.h"

namespace tally::collector {

struct ChunkSample {
  bool is_process = true;
  bool is_cgroup = false;  // a cgroup line (not a process, not a host): its text only
  std::uint64_t ts_ns = 0;
  std::uint64_t interval_ns = 0;
  // Process samples. names_id is the names row, which holds the process's
  // pid and start time and its names; the chunk holds only the row's id.
  std::int64_t names_id = 0;
  std::uint64_t cpu_ns = 0;
  std::uint64_t rss_bytes = 0;
  bool exited = false;
  // Received without names (protocol version 2): served with them at the end.
  bool names_at_end = false;
  std::uint64_t wait_ns = 0;
  // Host samples.
  std::uint32_t ncpu = 0;
  std::uint64_t busy_ns = 0;
  std::uint32_t processes = 0;
  std::uint64_t dropped_updates = 0;
  std::uint64_t steal_ns = 0;
  std::uint64_t psi_some_ns = 0;
  std::uint64_t psi_full_ns = 0;
  std::int64_t unaccounted_ns = 0;
  std::uint64_t bpf_run_ns = 0;
  // Written with this release's fields (wait_ns; steal_ns to bpf_run_ns);
  // else as the first release wrote it, without them.
  bool extended = false;
  // The sample's JSON as received, names taken out, when tallyd's writer
  // would not write it so; names_at is where the names go back.
  std::optional<std::string> verbatim;
  std::uint64_t names_at = 0;

  bool operator==(const ChunkSample&) const = default;
};

// Whether tallyd's own writer (samples/json_line.h), given the sample's
// fields, writes exactly its JSON, with the names where it puts them or
// left out. Such a sample can be stored as its fields alone.
bool is_canonical(const StoredSample& s);

// A received sample as a chunk holds it; names_id is its names row
// (process samples). Verbatim unless the sample is canonical.
ChunkSample to_chunk_sample(const StoredSample& s, std::int64_t names_id);

std::string encode_chunk(std::span<const ChunkSample> samples);

Result<std::vector<ChunkSample>> decode_chunk(std::string_view blob);

// A process's names row (batch_store.h): its identity and its names
// members' text, `"comm":"sh","cmdline":"sh -c x","cgroup":"/"`.
struct ProcessNames {
  std::uint32_t pid = 0;
  std::uint64_t start_time_ns = 0;
  std::string names;
};

// The sample's JSON as it was received. `names` is its names row (process
// samples; null for host samples); `host` the chunk's host.
std::string sample_json(const ChunkSample& s, std::string_view host, const ProcessNames* names);

// The earliest and latest ts_ns of samples: the chunk row keeps them for
// its time index.
struct ChunkSpan {
  std::uint64_t min_ts_ns = 0;
  std::uint64_t max_ts_ns = 0;
};
ChunkSpan chunk_span(std::span<const ChunkSample> samples);

}  // namespace tally::collector
