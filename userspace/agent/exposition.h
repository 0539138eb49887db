// The Prometheus text exposition format (version 0.0.4) of what tallyd
// knows: cumulative per-process counters and tallyd's own health.
// Pure: takes values, returns the page.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/group_totals.h"
#include "agent/process_totals.h"

namespace tally::agent {

struct SinkHealth {
  std::string name;
  bool failing = false;
  std::uint64_t samples_sent = 0;
  std::uint64_t requests_failed = 0;
  std::uint64_t samples_lost = 0;  // declared lost to it (gap records) + rejected
  std::uint64_t pending_batches = 0;
};

struct ExporterHealth {
  std::uint64_t outbox_pending_batches = 0;
  std::uint64_t outbox_stored_bytes = 0;
  std::uint64_t samples_committed = 0;
  std::uint64_t dropped_updates = 0;
  std::uint64_t append_failures = 0;
  std::size_t processes_tracked = 0;
  std::size_t processes_omitted = 0;  // over the top / min-CPU bounds
  std::vector<SinkHealth> sinks;
};

inline constexpr const char* kExpositionContentType = "text/plain; version=0.0.4; charset=utf-8";

// Metric families, each with HELP and TYPE:
//   tally_process_cpu_seconds_total{pid,comm}       counter
//   tally_process_cpu_wait_seconds_total{pid,comm}  counter
//   tally_process_resident_memory_bytes{pid,comm}   gauge
//   tally_outbox_pending_batches, tally_outbox_stored_bytes,
//   tally_samples_committed_total, tally_dropped_updates_total,
//   tally_outbox_append_failures_total, tally_exporter_processes{state},
//   tally_sink_failing{sink}, tally_sink_samples_sent_total{sink},
//   tally_sink_send_failures_total{sink}, tally_sink_samples_lost_total{sink},
//   tally_sink_pending_batches{sink}
// Two processes with the same pid and name (one exited, its pid reused by
// the other) would be one series: the live one is shown.
// groups: the group rollups and the total of all process lines; null: none.
std::string render_exposition(const std::vector<ProcessTotal>& processes,
                              const ExporterHealth& health, const GroupTotals* groups = nullptr);

// A label value: UTF-8 (bad bytes become U+FFFD) with \, " and newline escaped.
void append_label_value(std::string& out, std::string_view value);

}  // namespace tally::agent
