// The form in which tallyd stores samples in its outbox: one record of a
// dozen bytes per sample instead of a ~430-byte JSON line.
//
// Why: an append's cost is its bytes (docs/BENCHMARKS.md, row 5). A sample's
// numbers change every interval, but its process's pid, start time, comm,
// cmdline and cgroup do not; they go into outbox dictionary entries
// (queue::DictionaryUpdate), written once per process incarnation, and each
// record names its process by key. The interval's time, length and host go
// into one entry per interval. The shipper turns records back into the
// samples they were made from (CompactDecoder), field for field, so sinks
// and servers see no difference.
//
// Records: a tag ('p' process, 'x' process that exited, 'h' host; 'P' and
// 'X' when the RSS is not whole pages), then
// numbers written 6 bits to a byte (continuation bytes 0x80-0xBF, the last
// 0x40-0x7F). No byte of a record is below 0x40, so a record never holds the
// '\n' that separates the outbox's records, and a payload of records never
// starts with the '{' of a JSON line.
//   p|x  interval key, process key, cpu_ns, rss in 4 KiB pages (P|X: bytes),
//        wait_ns
//   h    interval key, ncpu, busy_ns, processes, dropped_updates, steal_ns,
//        psi_some_ns, psi_full_ns, unaccounted_ns (zigzag), bpf_run_ns
//   c    interval key, cgroup key, processes, process_cpu_ns, known (bit 0
//        usage, 1 throttling, 2 pressure), cpu_ns, nr_periods, nr_throttled,
//        throttled_ns, psi_some_ns, psi_full_ns, limit in millionths of a CPU
// Entries: 'n' pid, start_time_ns, comm, cmdline, cgroup, container_id,
// container_runtime, pod_uid, pod_qos, pod, namespace, container (strings as
// their length and bytes); 'g' a cgroup's path, container_id,
// container_runtime, pod_uid, pod_qos, pod, namespace, container; 'i' ts_ns,
// interval_ns, host. cpu_pct and
// wait_pct are not stored: they are recomputed exactly as the sampler
// computes them. Fields after dropped_updates, cgroup and the RSS came in a
// later release: records and entries that end before them are read with
// those fields 0 or empty.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "samples/sample.h"
#include "tally/queue/outbox.h"
#include "tally/result.h"

namespace tally::samples {

struct CompactInterval {
  std::vector<std::string> records;  // one per sample, the host's last
  queue::DictionaryUpdate dictionary;
};

// One per outbox writer; remembers which processes have entries.
class CompactEncoder {
 public:
  // first_key: Outbox::first_unused_dictionary_key().
  explicit CompactEncoder(std::uint64_t first_key) : next_key_(first_key) {}

  CompactInterval encode(const IntervalSamples& interval);

  // The last interval encode() returned was not stored. Its entries never
  // reached the outbox, so everything is named afresh from the next
  // interval on, and the keys stored before are retired with it.
  void not_stored();

  std::size_t processes_known() const { return known_.size(); }
  std::size_t cgroups_known() const { return cgroups_.size(); }

  // A cgroup's entry is retired after this many intervals without a line.
  static constexpr std::uint32_t kCgroupIdleIntervals = 10;
  static constexpr std::size_t kMaxCgroupsKnown = 4096;

 private:
  // A digest, not the names: the sampler's cache holds those already, and
  // this only needs to notice that an exec changed them.
  struct Known {
    std::uint64_t key = 0;
    std::uint64_t names_digest = 0;
  };
  std::map<std::pair<std::uint32_t, std::uint64_t>, Known> known_;  // by (pid, start)
  struct KnownCgroup {
    std::uint64_t key = 0;
    std::uint64_t names_digest = 0;
    std::uint32_t idle = 0;  // intervals since its last line
  };
  std::uint64_t cgroup_key(const CgroupSample& s, queue::DictionaryUpdate& dict);
  void age_cgroups(queue::DictionaryUpdate& dict);
  std::unordered_map<std::string, KnownCgroup> cgroups_;  // by path
  std::vector<std::uint64_t> to_retire_;
  std::uint64_t next_key_;
};

// Whether a record is compact, or a JSON line (stored by a tallyd from
// before compact records; a batch formed across the upgrade from staged
// samples holds both).
inline bool is_compact_record(std::string_view record) {
  return !record.empty() && record.front() != '{';
}

class CompactDecoder {
 public:
  // The entry stored for a key, nullopt if there is none.
  using Lookup = std::function<Result<std::optional<std::string>>(std::uint64_t key)>;
  explicit CompactDecoder(Lookup lookup) : lookup_(std::move(lookup)) {}

  // The samples the records were made from, equal field for field (cpu_pct
  // is recomputed as the sampler computes it); records that are JSON lines
  // are parsed (json_line_reader.h). An error names the record and what is
  // wrong with it.
  Result<std::vector<Sample>> decode(std::span<const std::string_view> records);

 private:
  struct Names {
    std::uint32_t pid = 0;
    std::uint64_t start_time_ns = 0;
    std::string comm, cmdline, cgroup;
    std::string container_id, container_runtime, pod_uid, pod_qos, pod, pod_namespace, container;
  };
  struct Header {
    std::uint64_t ts_ns = 0, interval_ns = 0;
    std::string host;
  };
  Result<const Names*> names(std::uint64_t key);
  Result<const CgroupSample*> cgroup_names(std::uint64_t key);
  Result<Sample> decode_cgroup(std::string_view record);
  Result<const Header*> header(std::uint64_t key);
  Result<Sample> decode_record(std::string_view record);

  Lookup lookup_;
  // Entries do not change once stored. A process's names are dropped from
  // the cache when its exit is decoded, and the caches are emptied when
  // they grow past their bound (keys of exec'd processes, a host with more
  // processes than the bound).
  std::unordered_map<std::uint64_t, Names> names_;
  std::unordered_map<std::uint64_t, Header> headers_;
  std::unordered_map<std::uint64_t, CgroupSample> cgroups_;  // names only
};

}  // namespace tally::samples
