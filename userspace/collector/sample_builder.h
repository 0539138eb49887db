// Builds one stored sample from the parser events of one sample object:
// re-serializes the object as compact JSON (unknown fields included, key
// order and number spelling kept), takes a process's names out of it into
// a text of their own (the store keeps them once per process, and protocol
// version 2 lets them be left out) and checks the fields the protocol
// defines for its kind (docs/protocol.md, "Sample objects"; the agent side
// is userspace/agent/sample.cc).
//
// Usage: begin(), then every event inside the object (the sample's own
// braces excluded), then finish().
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/batch_request.h"
#include "collector/json_field.h"
#include "tally/result.h"

namespace tally::collector {

class SampleBuilder {
 public:
  // Fields the collector knows, across both kinds.
  enum Field {
    kKind,
    kTsNs,
    kIntervalNs,
    kHost,
    kPid,
    kStartTimeNs,
    kComm,
    kCmdline,
    kCgroup,
    kCpuNs,
    kCpuPct,
    kRssBytes,
    kExited,
    kNcpu,
    kBusyNs,
    kProcesses,
    kDroppedUpdates,
    // Fields of a later release: never required.
    kContainerId,
    kContainerRuntime,
    kPodUid,
    kPodQos,
    kPod,
    kNamespace,
    kContainer,
    kWaitNs,
    kWaitPct,
    kStealNs,
    kPsiSomeNs,
    kPsiFullNs,
    kUnaccountedNs,
    kBpfRunNs,
    // Cgroup lines' own (protocol version 3).
    kProcessCpuNs,
    kNrPeriods,
    kNrThrottled,
    kThrottledNs,
    kLimitCpus,
    kFieldCount
  };

  void begin();
  // Events. number_text is the number as spelled in the body (numbers only).
  void key(std::string_view k);
  void scalar(JsonValue v, std::string_view number_text);
  void open(bool is_array);
  void close();
  // Checks the fields and returns the sample; the error names the field
  // without the "samples[i]." prefix: "cpu_ns: expected unsigned integer, got string".
  Result<StoredSample> finish(std::uint64_t index);

 private:
  Result<StoredSample> finish_cgroup(std::uint64_t index);
  void before_value();
  bool at_top() const { return levels_.size() == 1; }
  // Where the current member's text goes: a name member (and anything
  // nested in it) to names_, the rest to json_.
  std::string& out() { return in_names_ ? names_ : json_; }

  std::string json_;
  // Per open container: is it an array, and has it had an element yet.
  struct Level {
    bool is_array;
    bool empty;
  };
  std::vector<Level> levels_;
  int current_field_ = -1;               // known field of the last depth-1 key, or -1
  bool in_names_ = false;                // inside a comm, cmdline or cgroup member
  std::string names_;                    // the comm, cmdline, cgroup members' text
  std::optional<std::size_t> names_at_;  // offset in json_ of the first of them
  std::array<JsonValue, kFieldCount> values_{};
  std::array<bool, kFieldCount> seen_{};
  int duplicate_field_ = -1;
};

}  // namespace tally::collector
