#include "shipping/otlp_format.h"

#include <algorithm>
#include <vector>

#include <nlohmann/json.hpp>

namespace tally::shipping {

namespace {

// Aggregation temporality, opentelemetry/proto/metrics/v1/metrics.proto.
constexpr int kDelta = 1;
constexpr int kCumulative = 2;

// JSON string with quotes. The records' strings are valid UTF-8 (the JSON
// parser checked them), so only quotes, backslashes and controls need care.
void append_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    } else {
      out += ch;
    }
  }
  out += '"';
}

class Attributes {
 public:
  explicit Attributes(std::string& out) : out_(out) { out_ += "\"attributes\":["; }
  ~Attributes() { out_ += ']'; }
  Attributes(const Attributes&) = delete;
  Attributes& operator=(const Attributes&) = delete;

  void string(std::string_view key, std::string_view value) {
    if (value.empty()) return;
    begin(key);
    out_ += "{\"stringValue\":";
    append_string(out_, value);
    out_ += "}}";
  }
  void boolean(std::string_view key, bool value) {
    begin(key);
    out_ += value ? "{\"boolValue\":true}}" : "{\"boolValue\":false}}";
  }
  // int64 as a decimal string (OTLP/JSON).
  void integer(std::string_view key, std::uint64_t value) {
    begin(key);
    fmt::format_to(std::back_inserter(out_), R"({{"intValue":"{}"}}}})", value);
  }

 private:
  void begin(std::string_view key) {
    if (!first_) out_ += ',';
    first_ = false;
    out_ += "{\"key\":";
    append_string(out_, key);
    out_ += ",\"value\":";
  }
  std::string& out_;
  bool first_ = true;
};

struct Point {
  std::uint64_t start_ns;
  std::uint64_t time_ns;
  bool is_double;
  double d = 0;
  std::uint64_t i = 0;
};

// kind: "sum" or "gauge". temporality 0: gauge.
void metric(std::string& out, bool& first, std::string_view name, std::string_view unit,
            std::string_view description, int temporality, bool monotonic, const Point& p) {
  if (!first) out += ',';
  first = false;
  out += "{\"name\":";
  append_string(out, name);
  out += ",\"description\":";
  append_string(out, description);
  out += ",\"unit\":";
  append_string(out, unit);
  out += temporality ? ",\"sum\":{" : ",\"gauge\":{";
  fmt::format_to(std::back_inserter(out),
                 R"("dataPoints":[{{"startTimeUnixNano":"{}","timeUnixNano":"{}",)", p.start_ns,
                 p.time_ns);
  if (p.is_double) {
    fmt::format_to(std::back_inserter(out), R"("asDouble":{}}}])", p.d);
  } else {
    fmt::format_to(std::back_inserter(out), R"("asInt":"{}"}}])", p.i);
  }
  if (temporality) {
    fmt::format_to(std::back_inserter(out), R"(,"aggregationTemporality":{},"isMonotonic":{})",
                   temporality, monotonic ? "true" : "false");
  }
  out += "}}";
}

double seconds(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }

}  // namespace

namespace {

void scope_head(std::string& out, const std::string& scope_version) {
  out += "},\"scopeMetrics\":[{\"scope\":{\"name\":\"tally\",\"version\":";
  append_string(out, scope_version);
  out += "},\"metrics\":[";
}

// The delta covers the interval, but not time before the process existed.
std::uint64_t interval_start(std::uint64_t ts_ns, std::uint64_t interval_ns) {
  return ts_ns > interval_ns ? ts_ns - interval_ns : 0;
}

// The semantic conventions' container and k8s resource attributes of a
// process or cgroup line; a systemd unit is not a container.
template <typename Line>
void container_attributes(Attributes& a, const Line& line) {
  if (line.container_runtime != "systemd") {
    a.string("container.id", line.container_id);
    a.string("container.runtime", line.container_runtime);
  }
  a.string("k8s.pod.uid", line.pod_uid);
  a.string("k8s.pod.name", line.pod);
  a.string("k8s.namespace.name", line.pod_namespace);
  a.string("k8s.container.name", line.container);
}

}  // namespace

void OtlpFormat::process_resource(std::string& out, const samples::ProcessSample& p) const {
  out += "{\"resource\":{";
  {
    Attributes a(out);
    a.string("host.name", p.host);
    a.string("host.id", options_.host_id);
    a.integer("process.pid", p.pid);
    a.string("process.executable.name", p.comm);
    a.string("process.linux.cgroup", p.cgroup);
    if (options_.cmdline) a.string("process.command_line", p.cmdline);
    container_attributes(a, p);
  }
  scope_head(out, options_.scope_version);
  bool first_metric = true;
  const std::uint64_t start =
      std::max(interval_start(p.ts_ns, p.interval_ns), std::min(p.start_time_ns, p.ts_ns));
  metric(out, first_metric, "process.cpu.time", "s",
         "CPU time used by the process in the interval, all threads", kDelta, true,
         Point{start, p.ts_ns, true, seconds(p.cpu_ns)});
  if (!p.exited) {
    metric(out, first_metric, "process.memory.usage", "By", "Resident set size of the process",
           kCumulative, false,
           Point{std::min(p.start_time_ns, p.ts_ns), p.ts_ns, false, 0, p.rss_bytes});
  }
  metric(out, first_metric, "tally.process.cpu.wait_time", "s",
         "Time the process's threads were runnable but waited for a CPU in the interval", kDelta,
         true, Point{start, p.ts_ns, true, seconds(p.wait_ns)});
  out += "]}]}";
}

void OtlpFormat::host_resource(std::string& out, const samples::HostSample& h) const {
  out += "{\"resource\":{";
  {
    Attributes a(out);
    a.string("host.name", h.host);
    a.string("host.id", options_.host_id);
  }
  scope_head(out, options_.scope_version);
  bool first_metric = true;
  const std::uint64_t start = interval_start(h.ts_ns, h.interval_ns);
  metric(out, first_metric, "system.cpu.logical.count", "{cpu}", "Logical CPUs on the host",
         kCumulative, false, Point{start, h.ts_ns, false, 0, h.ncpu});
  metric(out, first_metric, "tally.host.cpu.busy_time", "s",
         "Non-idle CPU time of all CPUs in the interval", kDelta, true,
         Point{start, h.ts_ns, true, seconds(h.busy_ns)});
  metric(out, first_metric, "tally.host.processes", "{process}",
         "Processes reported in the interval", 0, false,
         Point{start, h.ts_ns, false, 0, h.processes});
  metric(out, first_metric, "tally.dropped_updates", "{update}",
         "CPU-time updates the kernel side could not record in the interval", kDelta, true,
         Point{start, h.ts_ns, false, 0, h.dropped_updates});
  metric(out, first_metric, "tally.host.cpu.steal_time", "s",
         "Time the hypervisor ran something else while the host's CPUs had work", kDelta, true,
         Point{start, h.ts_ns, true, seconds(h.steal_ns)});
  metric(out, first_metric, "tally.host.cpu.pressure.some", "s",
         "Time some runnable task waited for a CPU (PSI)", kDelta, true,
         Point{start, h.ts_ns, true, seconds(h.psi_some_ns)});
  metric(out, first_metric, "tally.host.cpu.pressure.full", "s",
         "Time all non-idle tasks waited for a CPU (PSI)", kDelta, true,
         Point{start, h.ts_ns, true, seconds(h.psi_full_ns)});
  metric(out, first_metric, "tally.host.cpu.unaccounted_time", "s",
         "Busy CPU time counted for the host but for no process in the interval", 0, false,
         Point{start, h.ts_ns, true, static_cast<double>(h.unaccounted_ns) / 1e9});
  metric(out, first_metric, "tally.bpf.run_time", "s",
         "Run time of tally's BPF programs in the interval (kernel BPF stats)", kDelta, true,
         Point{start, h.ts_ns, true, seconds(h.bpf_run_ns)});
  out += "]}]}";
}

// A cgroup's resource: the semantic conventions' container and k8s
// attributes where it is a container, the path where it is not (a systemd
// service). Metrics the host does not offer are left out, not sent as 0.
void OtlpFormat::cgroup_resource(std::string& out, const samples::CgroupSample& c) const {
  out += "{\"resource\":{";
  {
    Attributes a(out);
    a.string("host.name", c.host);
    a.string("host.id", options_.host_id);
    a.string("tally.cgroup.path", c.cgroup);
    if (c.container_runtime == "systemd") a.string("tally.cgroup.unit", c.container_id);
    container_attributes(a, c);
  }
  scope_head(out, options_.scope_version);
  bool first_metric = true;
  const std::uint64_t start = interval_start(c.ts_ns, c.interval_ns);
  if (c.usage_known) {
    metric(out, first_metric, "tally.cgroup.cpu.time", "s",
           "CPU time used by the cgroup and its descendants in the interval (cpu.stat)", kDelta,
           true, Point{start, c.ts_ns, true, seconds(c.cpu_ns)});
  }
  if (c.throttling_known) {
    metric(out, first_metric, "tally.cgroup.cpu.throttled_time", "s",
           "Time the cgroup's CPU limit held its tasks back in the interval", kDelta, true,
           Point{start, c.ts_ns, true, seconds(c.throttled_ns)});
    metric(out, first_metric, "tally.cgroup.cpu.periods", "{period}",
           "Enforcement periods in which the cgroup had runnable tasks", kDelta, true,
           Point{start, c.ts_ns, false, 0, c.nr_periods});
    metric(out, first_metric, "tally.cgroup.cpu.throttled_periods", "{period}",
           "Enforcement periods in which the cgroup used up its quota", kDelta, true,
           Point{start, c.ts_ns, false, 0, c.nr_throttled});
  }
  if (c.pressure_known) {
    metric(out, first_metric, "tally.cgroup.cpu.pressure.some", "s",
           "Time some runnable task of the cgroup waited for a CPU (PSI)", kDelta, true,
           Point{start, c.ts_ns, true, seconds(c.psi_some_ns)});
    metric(out, first_metric, "tally.cgroup.cpu.pressure.full", "s",
           "Time all non-idle tasks of the cgroup waited for a CPU (PSI)", kDelta, true,
           Point{start, c.ts_ns, true, seconds(c.psi_full_ns)});
  }
  metric(out, first_metric, "tally.cgroup.cpu.limit", "{cpu}",
         "The cgroup's CPU limit (quota / period); 0: none", 0, false,
         Point{start, c.ts_ns, true, c.limit_cpus});
  out += "]}]}";
}

void OtlpFormat::rollup_resources(std::string& out, const IntervalRollup& r) const {
  const std::uint64_t start = interval_start(r.ts_ns, r.interval_ns);
  out += ",{\"resource\":{";
  {
    Attributes a(out);
    a.string("host.name", r.host);
    a.string("host.id", options_.host_id);
    a.boolean("tally.remainder", true);
  }
  scope_head(out, options_.scope_version);
  bool first_metric = true;
  metric(out, first_metric, "tally.other.cpu.time", "s",
         "CPU time in the interval of the processes not sent on their own", kDelta, true,
         Point{start, r.ts_ns, true, seconds(r.other.cpu_ns)});
  metric(out, first_metric, "tally.other.cpu.wait_time", "s",
         "Run-queue wait in the interval of the processes not sent on their own", kDelta, true,
         Point{start, r.ts_ns, true, seconds(r.other.wait_ns)});
  metric(out, first_metric, "tally.other.processes", "{process}",
         "Processes of the interval not sent on their own", 0, false,
         Point{start, r.ts_ns, false, 0, r.other.processes});
  out += "]}]}";
  for (const GroupRollup& g : r.groups) {
    out += ",{\"resource\":{";
    {
      Attributes a(out);
      a.string("host.name", r.host);
      a.string("host.id", options_.host_id);
      a.string("tally.group.by", g.by);
      a.string("tally.group.name", g.name);
    }
    scope_head(out, options_.scope_version);
    first_metric = true;
    metric(out, first_metric, "tally.group.cpu.time", "s",
           "CPU time of the group's processes in the interval", kDelta, true,
           Point{start, r.ts_ns, true, seconds(g.total.cpu_ns)});
    metric(out, first_metric, "tally.group.cpu.wait_time", "s",
           "Run-queue wait of the group's processes in the interval", kDelta, true,
           Point{start, r.ts_ns, true, seconds(g.total.wait_ns)});
    metric(out, first_metric, "tally.group.other.cpu.time", "s",
           "CPU time of the group's processes not sent on their own", kDelta, true,
           Point{start, r.ts_ns, true, seconds(g.other.cpu_ns)});
    metric(out, first_metric, "tally.group.processes", "{process}",
           "Processes of the group with a line in the interval", 0, false,
           Point{start, r.ts_ns, false, 0, g.total.processes});
    metric(out, first_metric, "tally.group.memory.usage", "By",
           "Resident memory of the group's processes at the interval's end", 0, false,
           Point{start, r.ts_ns, false, 0, g.total.rss_bytes});
    out += "]}]}";
  }
}

Result<std::string> OtlpFormat::encode(const queue::Batch& batch,
                                       std::span<const samples::Sample> samples,
                                       std::uint32_t first, std::uint32_t count) const {
  if (batch.kind == queue::Batch::Kind::gap) {
    return Error::format("encode batch {}: OTLP cannot carry a gap record", batch.seq);
  }
  if (static_cast<std::size_t>(first) + count > samples.size()) {
    return Error::format("encode batch {}: piece {}+{} outside its {} samples", batch.seq, first,
                         count, samples.size());
  }
  std::string out;
  out.reserve(static_cast<std::size_t>(count) * 900);
  out += "{\"resourceMetrics\":[";
  RollupOptions rollup = options_.rollup;
  rollup.groups = &groups_;
  const RollupPlan plan = plan_rollups(samples, rollup);
  bool first_resource = true;
  for (std::uint32_t i = first; i < first + count; ++i) {
    const samples::Sample& sample = samples[i];
    if (std::holds_alternative<samples::UnknownSample>(sample) || !plan.sent[i]) continue;
    if (!first_resource) out += ',';
    first_resource = false;
    if (const auto* p = std::get_if<samples::ProcessSample>(&sample)) {
      process_resource(out, *p);
    } else if (const auto* c = std::get_if<samples::CgroupSample>(&sample)) {
      cgroup_resource(out, *c);
    } else {
      host_resource(out, std::get<samples::HostSample>(sample));
      if (plan.at_host[i] != nullptr && plan.at_host[i]->complete) {
        rollup_resources(out, *plan.at_host[i]);
      }
    }
  }
  out += "]}";
  return out;
}

Outcome OtlpFormat::classify(long status) const {
  if (status >= 200 && status < 300) return Outcome::ack;
  if (status == 429 || status == 502 || status == 503 || status == 504) return Outcome::retry;
  if (status == 401 || status == 403) return Outcome::retry;  // credentials: see SinkFormat
  if (status == 413) return Outcome::split;
  if (status >= 400 && status < 600) return Outcome::reject;
  return Outcome::retry;  // 1xx/3xx: a misconfiguration to fix, not data to drop
}

Verdict OtlpFormat::judge(const HttpResponse& response) const {
  Verdict v{classify(response.status), 0, {}};
  if (v.outcome != Outcome::ack || response.body.empty()) return v;
  const auto j = nlohmann::json::parse(response.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return v;
  auto ps = j.find("partialSuccess");
  if (ps == j.end() || !ps->is_object()) return v;
  std::uint64_t rejected = 0;
  if (auto n = ps->find("rejectedDataPoints"); n != ps->end()) {
    // int64 as a string per OTLP/JSON; some servers write a number.
    if (n->is_number_unsigned()) {
      rejected = n->get<std::uint64_t>();
    } else if (n->is_string()) {
      rejected = std::strtoull(n->get_ref<const std::string&>().c_str(), nullptr, 10);
    }
  }
  std::string message;
  if (auto m = ps->find("errorMessage"); m != ps->end() && m->is_string()) message = *m;
  if (rejected == 0 && message.empty()) return v;
  v.rejected_points = rejected;
  v.warning = fmt::format("partial success: {} data points rejected{}{}", rejected,
                          message.empty() ? "" : ": ", message);
  return v;
}

}  // namespace tally::shipping
