// OTLP/HTTP with the JSON encoding (gzip) for an OpenTelemetry Collector's
// /v1/metrics, following the semantic conventions for process metrics.
//
// Each process sample is one ResourceMetrics whose resource is the process:
//   host.name, host.id (/etc/machine-id), process.pid,
//   process.executable.name (comm), process.linux.cgroup,
//   process.command_line (only with cmdline = true: the conventions say a
//   command line should not be collected unsanitized by default)
// with two metrics:
//   process.cpu.time      Sum, delta, monotonic, unit "s", asDouble: the
//                         CPU used over (ts - interval, ts], all threads
//   process.memory.usage  Sum, cumulative, not monotonic (an UpDownCounter),
//                         unit "By", asInt: resident set at ts; omitted for
//                         a process that exited (its memory is gone)
// The host sample is one ResourceMetrics (host.name, host.id) with
//   system.cpu.logical.count  Sum, cumulative, not monotonic, "{cpu}"
//   tally.host.cpu.busy_time  Sum, delta, monotonic, "s"
//   tally.host.processes      Gauge, "{process}" (process lines this interval)
//   tally.dropped_updates     Sum, delta, monotonic, "{update}"
//
// Delta temporality because a sample is exactly a delta: cumulative values
// would need totals the committed lines do not hold, and an encoder that
// kept them would send different bytes after a restart. Per the OTLP/JSON
// rules, 64-bit integers are decimal strings and enums are integers.
#pragma once

#include <string>

#include "shipping/interval_rollup.h"
#include "shipping/sink_format.h"

namespace tally::shipping {

struct OtlpOptions {
  std::string host_id;        // /etc/machine-id; empty: attribute omitted
  std::string scope_version;  // tally's version, for the instrumentation scope
  bool cmdline = false;       // send process.command_line
  RollupOptions rollup;       // which processes (rollup.groups: set per encode)
};

// With the rollups (interval_rollup.h), per interval, beside the host:
//   a resource (host.name, host.id, tally.remainder = true) with
//     tally.other.cpu.time, tally.other.cpu.wait_time (delta, "s"),
//     tally.other.processes (gauge): the processes not sent on their own;
//   a resource per group (host.name, host.id, tally.group.by,
//   tally.group.name) with tally.group.cpu.time, .cpu.wait_time,
//   .other.cpu.time (delta, "s"), tally.group.processes (gauge) and
//   tally.group.memory.usage ("By").

class OtlpFormat final : public SinkFormat {
 public:
  explicit OtlpFormat(OtlpOptions options, GroupMatcher groups = {})
      : options_(std::move(options)), groups_(std::move(groups)) {}

  std::string_view name() const override { return "otlp"; }
  std::string_view content_type() const override { return "application/json"; }
  Result<std::string> encode(const queue::Batch& batch, std::span<const samples::Sample> samples,
                             std::uint32_t first, std::uint32_t count) const override;
  bool sends_gaps() const override { return false; }
  // The OTLP/HTTP rules: 2xx ack; 429, 502, 503, 504 retry (honouring
  // Retry-After); every other status is permanent. 413 splits (not a retry
  // of the same data; a collector's max_request_body_size answers 413).
  Outcome classify(long status) const override;
  // A 2xx with partialSuccess (rejectedDataPoints > 0 or an errorMessage)
  // is acknowledged: the spec forbids retrying it. The count and message are
  // passed on to be logged and shown in `tally status`.
  Verdict judge(const HttpResponse& response) const override;

 private:
  void process_resource(std::string& out, const samples::ProcessSample& p) const;
  void host_resource(std::string& out, const samples::HostSample& h) const;
  void cgroup_resource(std::string& out, const samples::CgroupSample& c) const;
  void rollup_resources(std::string& out, const IntervalRollup& r) const;

  OtlpOptions options_;
  GroupMatcher groups_;
};

}  // namespace tally::shipping
