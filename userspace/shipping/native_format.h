// tally-collector's protocol (docs/protocol.md): the samples' JSON lines in
// a JSON envelope that names the agent, the batch and the piece.
//
// Version 2 leaves a process's names (comm, cmdline, cgroup: most of a
// sample's bytes after gzip) out of its samples once the collector has
// acknowledged a request that carried them, so steady-state batches carry
// numbers only. What the collector holds is remembered here, in memory: a
// restarted agent sends every name again once. When the collector answers
// that it does not hold names it was sent (a new database, another
// collector behind the same URL), the shipper calls adapt_to() and sends the
// piece again with every name in it. A collector of an older release, which
// refuses version 2 with a 400 naming `version`, gets version 1 from then on
// (every name in every sample) instead of losing batches to rejections.
// Version 3 adds cgroup lines (samples::CgroupSample); a collector that
// refuses it gets version 2, whose batches leave the cgroup lines out: they
// are counted (samples_withheld) and `tally status` says so. Every
// kProbeAfterAcks acknowledged requests, at the end of a batch, an agent on
// an older version tries the newest again, so that an upgraded collector is
// noticed without a restart: an old one refuses that body, which is then
// resent in the older version (one extra request).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "shipping/sink_format.h"

namespace tally::shipping {

class NativeFormat final : public SinkFormat {
 public:
  NativeFormat(std::string agent_id, std::string host);

  std::string_view name() const override { return "native"; }
  std::string_view content_type() const override { return "application/json"; }
  Result<std::string> encode(const queue::Batch& batch, std::span<const samples::Sample> samples,
                             std::uint32_t first, std::uint32_t count) const override;
  Verdict judge(const HttpResponse& response) const override;
  void acknowledged(std::span<const samples::Sample> samples, std::uint32_t first,
                    std::uint32_t count) override;
  std::string adapt_to(const HttpResponse& response) override;

  // Processes whose names the collector holds, as far as this agent knows.
  std::size_t names_held() const { return held_.size(); }
  // 3; 2 once a collector said it speaks version 2 at most (no cgroup
  // lines), 1 once it said version 1 only (names always sent); for as long
  // as this process runs.
  int version() const { return version_; }
  std::uint64_t samples_withheld() const override { return withheld_; }
  bool withholding() const override { return version_ < 3; }

  // Past this many processes the memory is cleared rather than grown: names
  // are then sent once more. Processes leave it when their exit is acked.
  static constexpr std::size_t kMaxNamesHeld = 65536;
  // About an hour of 60-second batches.
  static constexpr std::uint64_t kProbeAfterAcks = 60;

 private:
  struct ProcessKey {
    std::uint64_t pid;
    std::uint64_t start_time_ns;
    bool operator==(const ProcessKey&) const = default;
  };
  struct KeyHash {
    std::size_t operator()(const ProcessKey& k) const {
      return std::hash<std::uint64_t>()(k.start_time_ns * 0x9E3779B97F4A7C15ULL ^ k.pid);
    }
  };
  void set_version(int version);

  std::string agent_id_, host_;
  int version_ = 0;
  std::uint64_t withheld_ = 0;  // cgroup lines acknowledged pieces left out
  std::uint64_t acks_since_fallback_ = 0;
  std::string envelope_head_;  // {"version":2,"agent_id":"…","host":"…",
  std::unordered_map<ProcessKey, std::uint64_t, KeyHash> held_;  // → samples::names_digest
};

}  // namespace tally::shipping
