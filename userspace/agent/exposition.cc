#include "agent/exposition.h"

#include <set>
#include <utility>

#include <fmt/format.h>

#include "tally/utf8.h"

namespace tally::agent {

namespace {

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// A family of one unlabelled sample.
void single(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            std::uint64_t value) {
  family(out, name, type, help);
  fmt::format_to(std::back_inserter(out), "{} {}\n", name, value);
}

void sink_sample(std::string& out, std::string_view name, const std::string& sink,
                 std::uint64_t value) {
  out += name;
  out += "{sink=\"";
  append_label_value(out, sink);
  fmt::format_to(std::back_inserter(out), "\"}} {}\n", value);
}

// One sample per process shown, with its labels.
template <typename Value>
void process_family(std::string& out, std::string_view name, std::string_view type,
                    std::string_view help, const std::vector<const ProcessTotal*>& shown,
                    const std::vector<std::string>& label_sets, Value value) {
  family(out, name, type, help);
  for (std::size_t i = 0; i < shown.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{}{} {}\n", name, label_sets[i], value(*shown[i]));
  }
}

}  // namespace

void append_label_value(std::string& out, std::string_view value) {
  const std::string clean = utf8_sanitized(value);
  for (char c : clean) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

namespace {

// The rollups: per group, and every process line together.
void group_families(std::string& out, const GroupTotals& g) {
  family(out, "tally_processes_cpu_seconds_total", "counter",
         "CPU time of every process line since tallyd started (shown on this page or not).");
  fmt::format_to(std::back_inserter(out), "tally_processes_cpu_seconds_total {}\n",
                 static_cast<double>(g.all_cpu_ns()) / 1e9);
  const auto each = [&](std::string_view name, std::string_view type, std::string_view help,
                        auto value) {
    family(out, name, type, help);
    for (const auto& [key, t] : g.groups()) {
      out += name;
      out += "{by=\"";
      append_label_value(out, t.by);
      out += "\",group=\"";
      append_label_value(out, t.name);
      fmt::format_to(std::back_inserter(out), "\"}} {}\n", value(t));
    }
  };
  each("tally_group_cpu_seconds_total", "counter",
       "CPU time of the group's processes since tallyd started (by cgroup, comm, [[group]]).",
       [](const GroupTotal& t) { return static_cast<double>(t.cpu_ns) / 1e9; });
  each("tally_group_cpu_wait_seconds_total", "counter",
       "Run-queue wait of the group's processes since tallyd started.",
       [](const GroupTotal& t) { return static_cast<double>(t.wait_ns) / 1e9; });
  each("tally_group_processes", "gauge", "The group's processes with a line in the last interval.",
       [&](const GroupTotal& t) { return g.current(t) ? t.processes : 0; });
  each("tally_group_resident_memory_bytes", "gauge",
       "Resident memory of the group's processes with a line in the last interval.",
       [&](const GroupTotal& t) { return g.current(t) ? t.rss_bytes : 0; });
}

}  // namespace

std::string render_exposition(const std::vector<ProcessTotal>& processes, const ExporterHealth& h,
                              const GroupTotals* groups) {
  // Live processes first, so a pid reused under the same name keeps the
  // series of the process that is still running.
  std::vector<const ProcessTotal*> shown;
  std::set<std::pair<std::uint32_t, std::string_view>> labels;
  for (int pass = 0; pass < 2; ++pass) {
    for (const auto& p : processes) {
      if (p.exited != (pass == 1)) continue;
      if (labels.emplace(p.pid, p.comm).second) shown.push_back(&p);
    }
  }
  std::vector<std::string> label_sets;
  label_sets.reserve(shown.size());
  for (const ProcessTotal* p : shown) {
    std::string l = fmt::format("{{pid=\"{}\",comm=\"", p->pid);
    append_label_value(l, p->comm);
    l += "\"}";
    label_sets.push_back(std::move(l));
  }

  std::string out;
  out.reserve(256 + shown.size() * 160);
  process_family(out, "tally_process_cpu_seconds_total", "counter",
                 "CPU time used by the process (all threads) since tallyd first saw it.", shown,
                 label_sets,
                 [](const ProcessTotal& p) { return static_cast<double>(p.cpu_ns) / 1e9; });
  process_family(out, "tally_process_cpu_wait_seconds_total", "counter",
                 "Time the process's threads were runnable but waited for a CPU, since tallyd "
                 "first saw it.",
                 shown, label_sets,
                 [](const ProcessTotal& p) { return static_cast<double>(p.wait_ns) / 1e9; });
  process_family(out, "tally_process_resident_memory_bytes", "gauge",
                 "Resident memory of the process at the last interval in which it used CPU.", shown,
                 label_sets, [](const ProcessTotal& p) { return p.rss_bytes; });
  if (groups != nullptr) group_families(out, *groups);

  single(out, "tally_outbox_pending_batches", "gauge",
         "Batches in the outbox that some sink has not acknowledged.", h.outbox_pending_batches);
  single(out, "tally_outbox_stored_bytes", "gauge",
         "Bytes the outbox holds, measured against its cap.", h.outbox_stored_bytes);
  single(out, "tally_samples_committed_total", "counter",
         "Samples committed to the outbox since tallyd started.", h.samples_committed);
  single(out, "tally_dropped_updates_total", "counter",
         "CPU-time updates the kernel side could not record (map full) since tallyd started.",
         h.dropped_updates);
  single(out, "tally_outbox_append_failures_total", "counter",
         "Intervals the outbox could not store since tallyd started.", h.append_failures);
  family(
      out, "tally_exporter_processes", "gauge",
      "Processes with running totals: shown on this page, or omitted by the top/min-CPU bounds.");
  fmt::format_to(std::back_inserter(out),
                 "tally_exporter_processes{{state=\"shown\"}} {}\n"
                 "tally_exporter_processes{{state=\"omitted\"}} {}\n"
                 "tally_exporter_processes{{state=\"tracked\"}} {}\n",
                 shown.size(), h.processes_omitted, h.processes_tracked);

  family(out, "tally_sink_failing", "gauge", "1 while deliveries to the sink are failing.");
  for (const auto& s : h.sinks) sink_sample(out, "tally_sink_failing", s.name, s.failing ? 1 : 0);
  family(out, "tally_sink_samples_sent_total", "counter",
         "Samples the sink acknowledged since tallyd started.");
  for (const auto& s : h.sinks)
    sink_sample(out, "tally_sink_samples_sent_total", s.name, s.samples_sent);
  family(out, "tally_sink_send_failures_total", "counter",
         "Failed delivery attempts (transport errors, retryable statuses) since tallyd started.");
  for (const auto& s : h.sinks) {
    sink_sample(out, "tally_sink_send_failures_total", s.name, s.requests_failed);
  }
  family(out, "tally_sink_samples_lost_total", "counter",
         "Samples declared lost to the sink (outbox cap, rejections) since tallyd started.");
  for (const auto& s : h.sinks)
    sink_sample(out, "tally_sink_samples_lost_total", s.name, s.samples_lost);
  family(out, "tally_sink_pending_batches", "gauge", "Batches the sink has not acknowledged.");
  for (const auto& s : h.sinks) {
    sink_sample(out, "tally_sink_pending_batches", s.name, s.pending_batches);
  }
  return out;
}

}  // namespace tally::agent
