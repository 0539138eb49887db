#include "samples/json_line.h"

#include <cmath>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tally::samples {

namespace {

// Why not nlohmann::ordered_json for the whole line: building an object of
// 13 members and dumping it cost ~5 µs per line, a fifth of tallyd's CPU per
// 1,000-sample interval (bench/outbox_bench.cc, BM_EncodeJson1000). The line
// is written directly instead, and nlohmann still writes every value that
// needs more than a copy: a string to escape or to repair (invalid UTF-8
// becomes U+FFFD), and a number outside the plain range below. The output is
// byte for byte what nlohmann writes for the whole object
// (tests/accounting/sample_json_test.cc checks it against that).
std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

class Line {
 public:
  explicit Line(std::string_view kind) {
    out_.reserve(448);
    out_ += R"({"kind":")";
    out_ += kind;
    out_ += '"';
  }

  Line& number(std::string_view key, std::uint64_t v) {
    this->key(key);
    const fmt::format_int digits(v);
    out_.append(digits.data(), digits.size());
    return *this;
  }

  Line& number(std::string_view key, double v) {
    this->key(key);
    // fmt and nlohmann both print the shortest form that reads back as v,
    // in fixed notation between these bounds; nlohmann adds ".0" to whole
    // numbers. Outside them (never for a percentage) nlohmann writes it.
    if (!std::signbit(v) && (v == 0 || (v >= 1e-4 && v < 1e15))) {
      char buf[32];
      const std::string_view shortest(buf, fmt::format_to_n(buf, sizeof buf, "{}", v).size);
      out_ += shortest;
      if (shortest.find('.') == std::string_view::npos) out_ += ".0";
    } else {
      out_ += dump(v);
    }
    return *this;
  }

  Line& signed_number(std::string_view key, std::int64_t v) {
    this->key(key);
    const fmt::format_int digits(v);
    out_.append(digits.data(), digits.size());
    return *this;
  }

  // Written only when not empty: most processes are in no container.
  Line& optional_text(std::string_view key, std::string_view v) {
    if (!v.empty()) text(key, v);
    return *this;
  }

  Line& boolean(std::string_view key, bool v) {
    this->key(key);
    out_ += v ? "true" : "false";
    return *this;
  }

  Line& text(std::string_view key, std::string_view v) {
    this->key(key);
    // Nearly every comm, cmdline and cgroup is printable ASCII without a
    // quote or backslash: copied as it is.
    for (const char c : v) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
        out_ += dump(std::string(v));
        return *this;
      }
    }
    out_ += '"';
    out_ += v;
    out_ += '"';
    return *this;
  }

  std::string done() {
    out_ += '}';
    return std::move(out_);
  }

 private:
  void key(std::string_view k) {
    out_ += ",\"";
    out_ += k;
    out_ += "\":";
  }
  std::string out_;
};

}  // namespace

std::vector<std::string> json_lines(const IntervalSamples& interval) {
  std::vector<std::string> out;
  out.reserve(interval.processes.size() + interval.cgroups.size() + 1);
  for (const auto& p : interval.processes) out.push_back(to_json_line(p));
  for (const auto& c : interval.cgroups) out.push_back(to_json_line(c));
  out.push_back(to_json_line(interval.host));
  return out;
}

std::string to_json_line(const ProcessSample& s, Names names, Form form) {
  const bool current = form == Form::current;
  Line line("process");
  line.number("ts_ns", s.ts_ns)
      .number("interval_ns", s.interval_ns)
      .text("host", s.host)
      .number("pid", std::uint64_t{s.pid})
      .number("start_time_ns", s.start_time_ns);
  if (names == Names::included) {
    line.text("comm", s.comm).text("cmdline", s.cmdline).text("cgroup", s.cgroup);
    if (current) {
      line.optional_text("container_id", s.container_id)
          .optional_text("container_runtime", s.container_runtime)
          .optional_text("pod_uid", s.pod_uid)
          .optional_text("pod_qos", s.pod_qos)
          .optional_text("pod", s.pod)
          .optional_text("namespace", s.pod_namespace)
          .optional_text("container", s.container);
    }
  }
  line.number("cpu_ns", s.cpu_ns).number("cpu_pct", s.cpu_pct);
  if (current) line.number("wait_ns", s.wait_ns).number("wait_pct", s.wait_pct);
  return line.number("rss_bytes", s.rss_bytes).boolean("exited", s.exited).done();
}

std::string to_json_line(const HostSample& s, Form form) {
  Line line("host");
  line.number("ts_ns", s.ts_ns)
      .number("interval_ns", s.interval_ns)
      .text("host", s.host)
      .number("ncpu", std::uint64_t{s.ncpu})
      .number("busy_ns", s.busy_ns)
      .number("cpu_pct", s.cpu_pct)
      .number("processes", std::uint64_t{s.processes})
      .number("dropped_updates", s.dropped_updates);
  if (form == Form::current) {
    line.number("steal_ns", s.steal_ns)
        .number("psi_some_ns", s.psi_some_ns)
        .number("psi_full_ns", s.psi_full_ns)
        .signed_number("unaccounted_ns", s.unaccounted_ns)
        .number("bpf_run_ns", s.bpf_run_ns);
  }
  return line.done();
}

std::string to_json_line(const CgroupSample& s) {
  Line line("cgroup");
  line.number("ts_ns", s.ts_ns)
      .number("interval_ns", s.interval_ns)
      .text("host", s.host)
      .text("cgroup", s.cgroup)
      .optional_text("container_id", s.container_id)
      .optional_text("container_runtime", s.container_runtime)
      .optional_text("pod_uid", s.pod_uid)
      .optional_text("pod_qos", s.pod_qos)
      .optional_text("pod", s.pod)
      .optional_text("namespace", s.pod_namespace)
      .optional_text("container", s.container)
      .number("processes", std::uint64_t{s.processes})
      .number("process_cpu_ns", s.process_cpu_ns);
  if (s.usage_known) line.number("cpu_ns", s.cpu_ns).number("cpu_pct", s.cpu_pct);
  if (s.throttling_known) {
    line.number("nr_periods", s.nr_periods)
        .number("nr_throttled", s.nr_throttled)
        .number("throttled_ns", s.throttled_ns);
  }
  if (s.pressure_known)
    line.number("psi_some_ns", s.psi_some_ns).number("psi_full_ns", s.psi_full_ns);
  return line.number("limit_cpus", s.limit_cpus).done();
}

std::string to_json_line(const Sample& s) {
  struct Writer {
    std::string operator()(const ProcessSample& p) const { return to_json_line(p); }
    std::string operator()(const HostSample& h) const { return to_json_line(h); }
    std::string operator()(const CgroupSample& c) const { return to_json_line(c); }
    std::string operator()(const UnknownSample& u) const { return u.json_line; }
  };
  return std::visit(Writer{}, s);
}

}  // namespace tally::samples
