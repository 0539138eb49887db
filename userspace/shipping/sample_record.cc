#include "sample_record.h"

#include <nlohmann/json.hpp>

namespace tally::shipping {

namespace {

using Json = nlohmann::json;

// Reads a required field of the expected JSON type; the lines are written by
// tallyd itself, so a miss is a bug worth a precise message, not a guess.
class FieldReader {
 public:
  explicit FieldReader(const Json& j) : j_(j) {}

  template <typename T>
  void unsigned_int(const char* key, T& out) {
    const Json* v = find(key);
    if (!v) return;
    if (!v->is_number_unsigned()) return fail(key, "an unsigned integer");
    out = v->get<T>();
  }
  void number(const char* key, double& out) {
    const Json* v = find(key);
    if (!v) return;
    if (!v->is_number()) return fail(key, "a number");
    out = v->get<double>();
  }
  void string(const char* key, std::string& out) {
    const Json* v = find(key);
    if (!v) return;
    if (!v->is_string()) return fail(key, "a string");
    out = v->get_ref<const std::string&>();
  }
  void boolean(const char* key, bool& out) {
    const Json* v = find(key);
    if (!v) return;
    if (!v->is_boolean()) return fail(key, "true or false");
    out = v->get<bool>();
  }
  const std::string& problem() const { return problem_; }

 private:
  const Json* find(const char* key) {
    if (!problem_.empty()) return nullptr;
    auto it = j_.find(key);
    if (it == j_.end()) {
      problem_ = fmt::format("{}: missing", key);
      return nullptr;
    }
    return &*it;
  }
  void fail(const char* key, const char* expected) {
    problem_ = fmt::format("{}: expected {}", key, expected);
  }

  const Json& j_;
  std::string problem_;
};

}  // namespace

Result<SampleRecord> parse_sample(std::string_view line) {
  const Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Error("not a JSON object");
  SampleRecord r;
  FieldReader f(j);
  std::string kind;
  f.string("kind", kind);
  if (kind == "process") {
    r.kind = SampleRecord::Kind::process;
  } else if (kind == "host") {
    r.kind = SampleRecord::Kind::host;
  } else {
    if (!f.problem().empty()) return Error(f.problem());
    return r;  // a newer kind: the caller skips it
  }
  f.unsigned_int("ts_ns", r.ts_ns);
  f.unsigned_int("interval_ns", r.interval_ns);
  f.string("host", r.host);
  if (r.kind == SampleRecord::Kind::process) {
    f.unsigned_int("pid", r.pid);
    f.unsigned_int("start_time_ns", r.start_time_ns);
    f.string("comm", r.comm);
    f.string("cmdline", r.cmdline);
    f.string("cgroup", r.cgroup);
    f.unsigned_int("cpu_ns", r.cpu_ns);
    f.number("cpu_pct", r.cpu_pct);
    f.unsigned_int("rss_bytes", r.rss_bytes);
    f.boolean("exited", r.exited);
  } else {
    f.unsigned_int("ncpu", r.ncpu);
    f.unsigned_int("busy_ns", r.busy_ns);
    f.number("cpu_pct", r.cpu_pct);
    f.unsigned_int("processes", r.processes);
    f.unsigned_int("dropped_updates", r.dropped_updates);
  }
  if (!f.problem().empty()) return Error(f.problem());
  return r;
}

}  // namespace tally::shipping
