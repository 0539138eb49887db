// Prometheus remote write 1.0 (format = "remote_write"): a protobuf
// WriteRequest (proto/remote_write.proto), snappy block compressed, for
// Prometheus (--web.enable-remote-write-receiver), Mimir, Thanos receive,
// Cortex, VictoriaMetrics (/api/v1/write), Grafana Cloud.
//
// Series, named as on tallyd's /metrics page (docs/sinks.md has the list):
//   tally_process_cpu_seconds_total{host,pid,comm,cgroup,container,pod,namespace}
//   tally_other_cpu_seconds_total{host}                the remainder (interval_rollup.h)
//   tally_group_cpu_seconds_total{host,by,group}       rollups by cgroup, comm, [[group]]
//   tally_host_*, tally_cgroup_*                       the host and cgroup lines
// Counters are sums of the interval deltas of the intervals a series was
// shipped in, kept per series across restarts (remote_write_state.h). A
// series shipped after an interval without it first gets a sample at the
// end of the interval before, carrying its value unchanged: so the increase
// of every interval is between two samples of the series, and
//   sum(increase(tally_process_cpu_seconds_total)) +
//       increase(tally_other_cpu_seconds_total)
// is the host's process CPU over any window, to rounding.
//
// Responses, as the spec says: 2xx acknowledged; 429 and 5xx retried (with
// Retry-After); 413 split; other 4xx permanent (dead-lettered with the
// server's reason), and an "out of order" / "out of bounds" / "too old"
// refusal is counted apart as old data refused (Verdict::old_data), which
// `tally status` names.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "shipping/interval_rollup.h"
#include "shipping/remote_write_state.h"
#include "shipping/sink_format.h"

namespace tally::shipping {

struct RemoteWriteOptions {
  RollupOptions rollup;  // rollup.groups: set per encode to the format's matcher
  // Where the counters are kept across restarts; empty: in memory only.
  std::filesystem::path state_path;
  std::string sink;  // for messages
};

class RemoteWriteFormat final : public SinkFormat {
 public:
  RemoteWriteFormat(RemoteWriteOptions options, GroupMatcher groups);

  std::string_view name() const override { return "remote_write"; }
  std::string_view content_type() const override { return "application/x-protobuf"; }
  std::string_view content_encoding() const override { return "snappy"; }
  Result<std::string> compress(std::string_view body, int level) const override;
  std::vector<std::string> extra_headers() const override;
  Result<std::string> encode(const queue::Batch& batch, std::span<const samples::Sample> samples,
                             std::uint32_t first, std::uint32_t count) const override;
  void acknowledged(std::span<const samples::Sample> samples, std::uint32_t first,
                    std::uint32_t count) override;
  void dead_lettered(std::span<const samples::Sample> samples, std::uint32_t first,
                     std::uint32_t count) override;
  bool sends_gaps() const override { return false; }
  Verdict judge(const HttpResponse& response) const override;

  // The counters as they stand (after the last batch done with), for tests.
  const RemoteWriteState& counters() const { return states_.current; }

 private:
  // The counters a batch is encoded from: those after the batch before it.
  const RemoteWriteState& base_for(std::uint64_t seq) const;
  void finish_piece(std::span<const samples::Sample> samples, std::uint32_t first,
                    std::uint32_t count);

  RemoteWriteOptions options_;
  GroupMatcher groups_;
  RemoteWriteStates states_;
  std::optional<RemoteWriteStateFile> file_;
  // The counters after the batch last encoded, kept until it is done with.
  mutable std::uint64_t encoded_seq_ = 0;
  mutable std::optional<RemoteWriteState> encoded_;
};

// Whether a refusal's text says the server would not take samples for
// their age (Prometheus "out of order sample", "out of bounds", Mimir
// "too old" / "out of order"): counted as old data refused.
bool refuses_old_data(std::string_view body);

}  // namespace tally::shipping
