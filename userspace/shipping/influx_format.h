// InfluxDB line protocol (gzip) for the /write endpoint of VictoriaMetrics
// (single node, or vminsert's /insert/<account>/influx/write) and of
// InfluxDB 1.x. docs/sinks.md has the data model; in short:
//
//   tally_process,cgroup=…,comm=…,host=…,pid=…[,start_time=…]
//       cpu_ns=…i,cpu_pct=…,rss_bytes=…i,start_time_ns=…i,interval_ns=…i,
//       exited=…[,cmdline="…"] <ts>
//   tally_host,host=… busy_ns=…i,cpu_pct=…,ncpu=…i,processes=…i,
//       dropped_updates=…i,interval_ns=…i <ts>
//
// Both servers identify a point by measurement + tag set + timestamp and
// keep one value per identity (InfluxDB overwrites, VictoriaMetrics with
// -dedup.minScrapeInterval keeps one), so re-sending a batch after a retry
// is idempotent as long as the tags identify the sample. pid is a tag because
// several processes of one name run at once; start_time becomes a tag only
// for samples whose (ts, pid) repeats within the batch (the pid was reused
// during the interval), so a reused pid does not create a series of its own.
#pragma once

#include <string>

#include "shipping/interval_rollup.h"
#include "shipping/sink_format.h"

namespace tally::shipping {

enum class TimePrecision { ns, us, ms, s };

struct InfluxOptions {
  TimePrecision precision = TimePrecision::ns;
  bool cmdline = false;  // send the command line as a string field
  RollupOptions rollup;  // which processes (rollup.groups: set per encode)
};

// With the rollups (interval_rollup.h), per interval:
//   tally_other,host=… cpu_ns=…i,wait_ns=…i,processes=…i,interval_ns=…i <ts>
//   tally_group,by=…,group=…,host=… cpu_ns=…i,wait_ns=…i,rss_bytes=…i,
//       processes=…i,other_cpu_ns=…i,other_wait_ns=…i,interval_ns=…i <ts>
class InfluxFormat final : public SinkFormat {
 public:
  explicit InfluxFormat(InfluxOptions options, GroupMatcher groups = {})
      : options_(options), groups_(std::move(groups)) {}

  std::string_view name() const override { return "influx"; }
  std::string_view content_type() const override { return "text/plain; charset=utf-8"; }
  Result<std::string> encode(const queue::Batch& batch, std::span<const samples::Sample> samples,
                             std::uint32_t first, std::uint32_t count) const override;
  bool sends_gaps() const override { return false; }
  // 2xx ack; 413 split; 400 (malformed, partial write) reject; 401, 403,
  // 404 (no such database) retry: a credential or database fixed by the
  // operator should find the data still waiting; 408, 429, 5xx retry.
  Outcome classify(long status) const override;

 private:
  InfluxOptions options_;
  GroupMatcher groups_;
};

// "ns", "us", "ms", "s"; nullopt otherwise.
std::optional<TimePrecision> parse_precision(std::string_view text);

// The request URL: `url` (the server's /write) with db=<database> (when
// not empty) and precision=<n|u|ms|s> added to its query string.
std::string influx_write_url(const std::string& url, const std::string& database,
                             TimePrecision precision);

}  // namespace tally::shipping
