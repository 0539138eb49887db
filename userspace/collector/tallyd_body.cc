#include "collector/tallyd_body.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <simdjson.h>
#include <nlohmann/json.hpp>

#include "collector/batch_parser.h"
#include "samples/json_line.h"
#include "samples/sample.h"

namespace tally::collector {

namespace {

namespace dom = simdjson::dom;

constexpr std::uint64_t kI64Max = std::numeric_limits<std::int64_t>::max();

// A JSON string as NativeFormat writes the envelope's.
std::string quoted(std::string_view s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Field readers: false when absent or of another type.
bool read(dom::object o, std::string_view key, std::uint64_t& out) {
  return o[key].get_uint64().get(out) == simdjson::SUCCESS;
}
bool read(dom::object o, std::string_view key, std::string_view& out) {
  return o[key].get_string().get(out) == simdjson::SUCCESS;
}
bool read(dom::object o, std::string_view key, bool& out) {
  return o[key].get_bool().get(out) == simdjson::SUCCESS;
}

bool read(dom::object o, std::string_view key, std::int64_t& out) {
  return o[key].get_int64().get(out) == simdjson::SUCCESS;
}

bool read_u32(dom::object o, std::string_view key, std::uint32_t& out) {
  std::uint64_t v = 0;
  if (!read(o, key, v) || v > std::numeric_limits<std::uint32_t>::max()) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

// The received text, compared piece by piece with what tallyd would write.
class Matcher {
 public:
  explicit Matcher(std::string_view text) : text_(text) {}
  bool expect(std::string_view piece) {
    if (text_.substr(at_, piece.size()) != piece) return false;
    at_ += piece.size();
    return true;
  }
  bool at_end() const { return at_ == text_.size(); }

 private:
  std::string_view text_;
  std::size_t at_ = 0;
};

samples::Form form(bool extended) {
  return extended ? samples::Form::current : samples::Form::first_release;
}

// A host sample: fills `s` and matches the text as read_sample() does.
bool read_host_sample(dom::object o, Matcher& body, StoredSample& s, std::string_view host) {
  samples::HostSample h;
  if (!read_u32(o, "ncpu", h.ncpu) || !read(o, "busy_ns", h.busy_ns) ||
      !read_u32(o, "processes", h.processes) || !read(o, "dropped_updates", h.dropped_updates)) {
    return false;
  }
  // An older tallyd's line ends at dropped_updates.
  s.extended = read(o, "steal_ns", h.steal_ns);
  if (s.extended &&
      (!read(o, "psi_some_ns", h.psi_some_ns) || !read(o, "psi_full_ns", h.psi_full_ns) ||
       !read(o, "unaccounted_ns", h.unaccounted_ns) || !read(o, "bpf_run_ns", h.bpf_run_ns))) {
    return false;
  }
  h.ts_ns = s.ts_ns;
  h.interval_ns = s.interval_ns;
  h.host = host;
  h.cpu_pct = samples::host_percent(h.busy_ns, h.interval_ns, h.ncpu);
  s.ncpu = h.ncpu;
  s.busy_ns = h.busy_ns;
  s.processes = h.processes;
  s.dropped_updates = h.dropped_updates;
  s.steal_ns = h.steal_ns;
  s.psi_some_ns = h.psi_some_ns;
  s.psi_full_ns = h.psi_full_ns;
  s.unaccounted_ns = h.unaccounted_ns;
  s.bpf_run_ns = h.bpf_run_ns;
  s.json = samples::to_json_line(h, form(s.extended));
  s.canonical = true;
  return body.expect(s.json);
}

// A cgroup line: stored as its text (it is few per interval), after the
// same check that it is what tallyd writes.
bool read_cgroup_sample(dom::object o, Matcher& body, StoredSample& s, std::string_view host) {
  samples::CgroupSample c;
  std::string_view cgroup;
  std::uint64_t processes = 0;
  if (!read(o, "cgroup", cgroup) || !read(o, "processes", processes) ||
      processes > std::numeric_limits<std::uint32_t>::max() ||
      !read(o, "process_cpu_ns", c.process_cpu_ns) ||
      o["limit_cpus"].get_double().get(c.limit_cpus) != simdjson::SUCCESS) {
    return false;
  }
  c.ts_ns = s.ts_ns;
  c.interval_ns = s.interval_ns;
  c.host = host;
  c.cgroup = cgroup;
  c.processes = static_cast<std::uint32_t>(processes);
  const std::pair<std::string_view, std::string*> names[] = {
      {"container_id", &c.container_id},
      {"container_runtime", &c.container_runtime},
      {"pod_uid", &c.pod_uid},
      {"pod_qos", &c.pod_qos},
      {"pod", &c.pod},
      {"namespace", &c.pod_namespace},
      {"container", &c.container}};
  for (const auto& [key, field] : names) {
    std::string_view v;
    if (read(o, key, v)) *field = v;
  }
  c.usage_known = read(o, "cpu_ns", c.cpu_ns);
  c.cpu_pct = samples::percent(c.cpu_ns, c.interval_ns);
  c.throttling_known = read(o, "nr_periods", c.nr_periods);
  if (c.throttling_known &&
      (!read(o, "nr_throttled", c.nr_throttled) || !read(o, "throttled_ns", c.throttled_ns))) {
    return false;
  }
  c.pressure_known = read(o, "psi_some_ns", c.psi_some_ns);
  if (c.pressure_known && !read(o, "psi_full_ns", c.psi_full_ns)) return false;
  s.is_cgroup = true;
  s.json = samples::to_json_line(c);
  s.canonical = false;
  return body.expect(s.json);
}

// Fills `s` from the sample and matches the text against the sample as
// tallyd writes it. False when a field is missing, of another type or out
// of the protocol's range, or when the text is written otherwise.
bool read_sample(dom::object o, Matcher& body, StoredSample& s) {
  std::string_view kind, host;
  if (!read(o, "kind", kind) || !read(o, "host", host) || !read(o, "ts_ns", s.ts_ns) ||
      !read(o, "interval_ns", s.interval_ns) || s.ts_ns > kI64Max) {
    return false;
  }
  s.host = host;
  if (kind == "host") return read_host_sample(o, body, s, host);
  if (kind == "cgroup") return read_cgroup_sample(o, body, s, host);
  if (kind != "process") return false;
  samples::ProcessSample p;
  std::uint64_t start = 0, cpu = 0;
  if (!read_u32(o, "pid", p.pid) || !read(o, "start_time_ns", start) || !read(o, "cpu_ns", cpu) ||
      !read(o, "rss_bytes", p.rss_bytes) || !read(o, "exited", p.exited) || start > kI64Max ||
      cpu > kI64Max) {
    return false;
  }
  s.extended = read(o, "wait_ns", p.wait_ns);
  std::string_view comm, cmdline, cgroup;
  const bool has_names = read(o, "comm", comm);
  if (has_names && (!read(o, "cmdline", cmdline) || !read(o, "cgroup", cgroup))) return false;
  p.ts_ns = s.ts_ns;
  p.interval_ns = s.interval_ns;
  p.host = host;
  p.start_time_ns = start;
  p.cpu_ns = cpu;
  p.cpu_pct = samples::percent(cpu, p.interval_ns);
  s.pid = p.pid;
  s.start_time_ns = start;
  s.cpu_ns = cpu;
  s.rss_bytes = p.rss_bytes;
  s.exited = p.exited;
  s.wait_ns = p.wait_ns;
  p.wait_pct = samples::percent(p.wait_ns, p.interval_ns);
  s.json = samples::to_json_line(p, samples::Names::left_out, form(s.extended));
  // tallyd writes the names just before cpu_ns; the store keeps them apart.
  const std::size_t at = s.json.find(",\"cpu_ns\":");
  if (has_names) {
    p.comm = comm;
    p.cmdline = cmdline;
    p.cgroup = cgroup;
    // Container and pod fields are names too, each written only when set.
    if (s.extended) {
      const std::pair<std::string_view, std::string*> optional[] = {
          {"container_id", &p.container_id},
          {"container_runtime", &p.container_runtime},
          {"pod_uid", &p.pod_uid},
          {"pod_qos", &p.pod_qos},
          {"pod", &p.pod},
          {"namespace", &p.pod_namespace},
          {"container", &p.container}};
      for (const auto& [key, field] : optional) {
        std::string_view v;
        if (read(o, key, v)) *field = v;
      }
    }
    const std::string line = samples::to_json_line(p, samples::Names::included, form(s.extended));
    if (!body.expect(line)) return false;
    // The names members as written: between the start time and cpu_ns.
    s.names = line.substr(at + 1, line.size() - s.json.size() - 1);
    s.names_at = at;
  } else {
    if (!body.expect(s.json)) return false;
    s.names_at = s.json.size() - 1;
  }
  s.canonical = true;
  return true;
}

}  // namespace

std::optional<BatchRequest> read_tallyd_body(std::string_view text) {
  // One parser per decode thread: it keeps its buffers between bodies.
  thread_local dom::parser parser;
  const simdjson::padded_string padded(text);
  dom::object root;
  if (parser.parse(padded).get_object().get(root) != simdjson::SUCCESS) return std::nullopt;
  std::uint64_t version = 0, seq = 0, first_index = 0, batch_samples = 0;
  std::string_view agent_id, host, kind;
  dom::array samples;
  if (!read(root, "version", version) || !read(root, "agent_id", agent_id) ||
      !read(root, "host", host) || !read(root, "seq", seq) || !read(root, "kind", kind) ||
      kind != "samples" || !read(root, "first_index", first_index) ||
      !read(root, "batch_samples", batch_samples) ||
      root["samples"].get_array().get(samples) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  if (version < static_cast<std::uint64_t>(kMinProtocolVersion) ||
      version > static_cast<std::uint64_t>(kProtocolVersion) || agent_id.empty() ||
      agent_id.size() > kMaxAgentIdBytes || seq == 0 || seq > kI64Max || first_index > kI64Max ||
      batch_samples > kI64Max) {
    return std::nullopt;
  }
  Matcher body(text);
  if (!body.expect(fmt::format(
          R"({{"version":{},"agent_id":{},"host":{},"seq":{},"kind":"samples","first_index":{},)"
          R"("batch_samples":{},"samples":[)",
          version, quoted(agent_id), quoted(host), seq, first_index, batch_samples))) {
    return std::nullopt;
  }
  SamplesPiece piece;
  piece.first_index = first_index;
  piece.batch_samples = batch_samples;
  piece.samples.reserve(samples.size());
  for (dom::element element : samples) {
    dom::object o;
    if (element.get_object().get(o) != simdjson::SUCCESS) return std::nullopt;
    if (!piece.samples.empty() && !body.expect(",")) return std::nullopt;
    StoredSample& s = piece.samples.emplace_back();
    s.index = first_index + piece.samples.size() - 1;
    if (!read_sample(o, body, s)) return std::nullopt;
    if (version < 2 && s.refers_to_names()) return std::nullopt;
    if (version < 3 && s.is_cgroup) return std::nullopt;
  }
  if (!body.expect("]}") || !body.at_end()) return std::nullopt;
  // Both are at most 2^63-1, so the sum cannot wrap.
  if (first_index + piece.samples.size() > batch_samples) return std::nullopt;
  BatchRequest request;
  request.agent_id = agent_id;
  request.host = host;
  request.seq = seq;
  request.body = std::move(piece);
  return request;
}

}  // namespace tally::collector
