#include "samples/json_line_reader.h"

#include <array>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tally::samples {

namespace {

using Json = nlohmann::json;

// Every field of either kind, flat, as the reader meets them.
struct Fields {
  enum class Kind { process, host, cgroup, other };
  Kind kind = Kind::other;
  // ts_ns, interval_ns, host, cpu_ns, cpu_pct and the names are kept in
  // `process` for every kind; processes and pressure in `host`.
  ProcessSample process;
  HostSample host;
  CgroupSample cgroup;     // the fields only cgroup lines have
  std::uint64_t seen = 0;  // a bit per kFields entry
};

enum class Type { unsigned_int, signed_int, number, string, boolean };

// The fields of both kinds, in one table: where each goes and what JSON
// type it must have. `process`/`host`/`cgroup`: which kinds require it.
struct Field {
  std::string_view name;
  Type type;
  bool process;
  bool host;
  bool cgroup = false;
};

// Fields added after the first release are never required: lines stored by
// an older tallyd lack them and read as 0 or empty.
constexpr std::array<Field, 36> kFields{{
    {"kind", Type::string, true, true, true},
    {"ts_ns", Type::unsigned_int, true, true, true},
    {"interval_ns", Type::unsigned_int, true, true, true},
    {"host", Type::string, true, true, true},
    {"pid", Type::unsigned_int, true, false},
    {"start_time_ns", Type::unsigned_int, true, false},
    {"comm", Type::string, true, false},
    {"cmdline", Type::string, true, false},
    {"cgroup", Type::string, true, false, true},
    {"cpu_ns", Type::unsigned_int, true, false},
    {"cpu_pct", Type::number, true, true},
    {"rss_bytes", Type::unsigned_int, true, false},
    {"exited", Type::boolean, true, false},
    {"ncpu", Type::unsigned_int, false, true},
    {"busy_ns", Type::unsigned_int, false, true},
    {"processes", Type::unsigned_int, false, true, true},
    {"dropped_updates", Type::unsigned_int, false, true},
    {"container_id", Type::string, false, false},
    {"container_runtime", Type::string, false, false},
    {"pod_uid", Type::string, false, false},
    {"pod_qos", Type::string, false, false},
    {"pod", Type::string, false, false},
    {"namespace", Type::string, false, false},
    {"container", Type::string, false, false},
    {"wait_ns", Type::unsigned_int, false, false},
    {"wait_pct", Type::number, false, false},
    {"steal_ns", Type::unsigned_int, false, false},
    {"psi_some_ns", Type::unsigned_int, false, false},
    {"psi_full_ns", Type::unsigned_int, false, false},
    {"unaccounted_ns", Type::signed_int, false, false},
    {"bpf_run_ns", Type::unsigned_int, false, false},
    {"process_cpu_ns", Type::unsigned_int, false, false, true},
    {"nr_periods", Type::unsigned_int, false, false},
    {"nr_throttled", Type::unsigned_int, false, false},
    {"throttled_ns", Type::unsigned_int, false, false},
    {"limit_cpus", Type::number, false, false, true},
}};

constexpr std::size_t field_index(std::string_view name) {
  for (std::size_t i = 0; i < kFields.size(); ++i) {
    if (kFields[i].name == name) return i;
  }
  return kFields.size();
}
static_assert(kFields.size() <= 64, "seen_ has a bit per field");

// Reads a line straight into the sample structs with nlohmann's SAX interface:
// no DOM, no per-field allocation besides the strings kept. A backlog of a
// day of 1,000 processes is 1.44 M lines, so this is the encoders' hot path.
class RecordReader : public nlohmann::json_sax<Json> {
 public:
  explicit RecordReader(Fields& r) : r_(r) {}

  bool null() override { return scalar_mismatch(); }
  bool boolean(bool v) override {
    if (auto* f = at(Type::boolean)) {
      if (f->name == "exited") r_.process.exited = v;
    }
    return ok();
  }
  bool number_integer(number_integer_t v) override {
    // Negative: valid only for a signed field.
    if (auto* f = at(Type::signed_int)) set_signed(f->name, v);
    return ok();
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (depth_ != 1 || current_ < 0) return true;
    const Field& f = kFields[static_cast<std::size_t>(current_)];
    if (f.type == Type::number) {
      set_double(f.name, static_cast<double>(v));
    } else if (f.type == Type::unsigned_int) {
      set_unsigned(f.name, v);
    } else if (f.type == Type::signed_int && v <= static_cast<std::uint64_t>(INT64_MAX)) {
      set_signed(f.name, static_cast<std::int64_t>(v));
    } else {
      mismatch(f);
    }
    seen_ |= std::uint64_t{1} << current_;
    return ok();
  }
  bool number_float(number_float_t v, const string_t&) override {
    if (auto* f = at(Type::number)) set_double(f->name, v);
    return ok();
  }
  bool string(string_t& v) override {
    if (auto* f = at(Type::string)) {
      if (f->name == "kind")
        kind_ = v;
      else if (f->name == "host")
        r_.process.host = std::move(v);
      else if (f->name == "comm")
        r_.process.comm = std::move(v);
      else if (f->name == "cmdline")
        r_.process.cmdline = std::move(v);
      else if (f->name == "cgroup")
        r_.process.cgroup = std::move(v);
      else if (f->name == "container_id")
        r_.process.container_id = std::move(v);
      else if (f->name == "container_runtime")
        r_.process.container_runtime = std::move(v);
      else if (f->name == "pod_uid")
        r_.process.pod_uid = std::move(v);
      else if (f->name == "pod_qos")
        r_.process.pod_qos = std::move(v);
      else if (f->name == "pod")
        r_.process.pod = std::move(v);
      else if (f->name == "namespace")
        r_.process.pod_namespace = std::move(v);
      else if (f->name == "container")
        r_.process.container = std::move(v);
    }
    return ok();
  }
  bool binary(binary_t&) override { return scalar_mismatch(); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) object_ = true;
    return nested();
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override { return nested(); }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ != 1) return true;
    current_ = -1;
    for (std::size_t i = 0; i < kFields.size(); ++i) {
      if (kFields[i].name == k) current_ = static_cast<int>(i);
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    if (problem_.empty()) problem_ = "not a JSON object";
    return false;
  }

  // After parsing: the kind, and every field that kind requires.
  Status finish() {
    if (!object_) return Error("not a JSON object");
    if (!problem_.empty()) return Error(problem_);
    if (!(seen_ & 1u)) return Error("kind: missing");
    if (kind_ == "process") {
      r_.kind = Fields::Kind::process;
    } else if (kind_ == "host") {
      r_.kind = Fields::Kind::host;
    } else if (kind_ == "cgroup") {
      r_.kind = Fields::Kind::cgroup;
    } else {
      r_.kind = Fields::Kind::other;  // a newer kind: kept as its line
      return ok_status();
    }
    r_.seen = seen_;
    for (std::size_t i = 0; i < kFields.size(); ++i) {
      const bool required = r_.kind == Fields::Kind::process ? kFields[i].process
                            : r_.kind == Fields::Kind::host  ? kFields[i].host
                                                             : kFields[i].cgroup;
      if (required && !(seen_ & (std::uint64_t{1} << i)))
        return Error::format("{}: missing", kFields[i].name);
    }
    return ok_status();
  }

 private:
  // The field being read, if it is one of ours at the top level and of type
  // `t`; records a mismatch otherwise.
  const Field* at(Type t) {
    if (depth_ != 1 || current_ < 0) return nullptr;
    const Field& f = kFields[static_cast<std::size_t>(current_)];
    seen_ |= std::uint64_t{1} << current_;
    if (f.type != t) {
      mismatch(f);
      return nullptr;
    }
    return &f;
  }
  bool scalar_mismatch() {
    if (depth_ == 1 && current_ >= 0) mismatch(kFields[static_cast<std::size_t>(current_)]);
    return ok();
  }
  bool nested() {
    if (depth_ == 1 && current_ >= 0) mismatch(kFields[static_cast<std::size_t>(current_)]);
    ++depth_;
    return ok();
  }
  void mismatch(const Field& f) {
    if (!problem_.empty()) return;
    static constexpr const char* kExpected[] = {"an unsigned integer", "an integer", "a number",
                                                "a string", "true or false"};
    problem_ = fmt::format("{}: expected {}", f.name, kExpected[static_cast<int>(f.type)]);
  }
  void set_double(std::string_view name, double v) {
    if (name == "wait_pct")
      r_.process.wait_pct = v;
    else if (name == "limit_cpus")
      r_.cgroup.limit_cpus = v;
    else
      r_.process.cpu_pct = v;
  }
  void set_signed(std::string_view name, std::int64_t v) {
    if (name == "unaccounted_ns") r_.host.unaccounted_ns = v;
  }
  void set_unsigned(std::string_view name, std::uint64_t v) {
    if (name == "ts_ns")
      r_.process.ts_ns = v;
    else if (name == "interval_ns")
      r_.process.interval_ns = v;
    else if (name == "pid")
      r_.process.pid = static_cast<std::uint32_t>(v);
    else if (name == "start_time_ns")
      r_.process.start_time_ns = v;
    else if (name == "cpu_ns")
      r_.process.cpu_ns = v;
    else if (name == "rss_bytes")
      r_.process.rss_bytes = v;
    else if (name == "ncpu")
      r_.host.ncpu = static_cast<std::uint32_t>(v);
    else if (name == "busy_ns")
      r_.host.busy_ns = v;
    else if (name == "processes")
      r_.host.processes = static_cast<std::uint32_t>(v);
    else if (name == "dropped_updates")
      r_.host.dropped_updates = v;
    else if (name == "wait_ns")
      r_.process.wait_ns = v;
    else if (name == "steal_ns")
      r_.host.steal_ns = v;
    else if (name == "psi_some_ns")
      r_.host.psi_some_ns = v;
    else if (name == "psi_full_ns")
      r_.host.psi_full_ns = v;
    else if (name == "bpf_run_ns")
      r_.host.bpf_run_ns = v;
    else if (name == "process_cpu_ns")
      r_.cgroup.process_cpu_ns = v;
    else if (name == "nr_periods")
      r_.cgroup.nr_periods = v;
    else if (name == "nr_throttled")
      r_.cgroup.nr_throttled = v;
    else if (name == "throttled_ns")
      r_.cgroup.throttled_ns = v;
  }
  bool ok() const { return problem_.empty(); }

  Fields& r_;
  std::string kind_;
  int depth_ = 0;
  int current_ = -1;
  std::uint64_t seen_ = 0;
  bool object_ = false;
  std::string problem_;
};

bool seen(const Fields& r, std::string_view name) { return (r.seen >> field_index(name)) & 1u; }

CgroupSample cgroup_of(Fields& r) {
  CgroupSample c = std::move(r.cgroup);
  ProcessSample& p = r.process;
  c.ts_ns = p.ts_ns;
  c.interval_ns = p.interval_ns;
  c.host = std::move(p.host);
  c.cgroup = std::move(p.cgroup);
  copy_container_fields(p, c);
  c.processes = r.host.processes;
  c.usage_known = seen(r, "cpu_ns");
  c.cpu_ns = p.cpu_ns;
  c.cpu_pct = p.cpu_pct;
  c.throttling_known = seen(r, "nr_periods");
  c.pressure_known = seen(r, "psi_some_ns");
  c.psi_some_ns = r.host.psi_some_ns;
  c.psi_full_ns = r.host.psi_full_ns;
  return c;
}

}  // namespace

// g++ 12 at -O2 warns that a string of the moved-from variant "may be used
// uninitialized" when a ProcessSample this size is moved into the Result: a
// false positive of g++ 12 with large std::variant alternatives, which -O1
// does not report.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
Result<Sample> parse_json_line(std::string_view line) {
  Fields r;
  RecordReader reader(r);
  Json::sax_parse(line, &reader);
  if (auto st = reader.finish(); !st.ok()) return st.error();
  switch (r.kind) {
    case Fields::Kind::process:
      return Sample(std::move(r.process));
    case Fields::Kind::host: {
      HostSample& h = r.host;
      h.ts_ns = r.process.ts_ns;
      h.interval_ns = r.process.interval_ns;
      h.host = std::move(r.process.host);
      h.cpu_pct = r.process.cpu_pct;
      return Sample(std::move(h));
    }
    case Fields::Kind::cgroup:
      return Sample(cgroup_of(r));
    case Fields::Kind::other:
      break;
  }
  return Sample(UnknownSample{std::string(line)});
}

#pragma GCC diagnostic pop

}  // namespace tally::samples
