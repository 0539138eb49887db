#include "collector/sample_builder.h"

#include <span>

#include <fmt/format.h>

#include "collector/json_text.h"
#include "collector/sample_chunk.h"

namespace tally::collector {

namespace {

constexpr std::array<std::string_view, SampleBuilder::kFieldCount> kNames = {"kind",
                                                                             "ts_ns",
                                                                             "interval_ns",
                                                                             "host",
                                                                             "pid",
                                                                             "start_time_ns",
                                                                             "comm",
                                                                             "cmdline",
                                                                             "cgroup",
                                                                             "cpu_ns",
                                                                             "cpu_pct",
                                                                             "rss_bytes",
                                                                             "exited",
                                                                             "ncpu",
                                                                             "busy_ns",
                                                                             "processes",
                                                                             "dropped_updates",
                                                                             "container_id",
                                                                             "container_runtime",
                                                                             "pod_uid",
                                                                             "pod_qos",
                                                                             "pod",
                                                                             "namespace",
                                                                             "container",
                                                                             "wait_ns",
                                                                             "wait_pct",
                                                                             "steal_ns",
                                                                             "psi_some_ns",
                                                                             "psi_full_ns",
                                                                             "unaccounted_ns",
                                                                             "bpf_run_ns",
                                                                             "process_cpu_ns",
                                                                             "nr_periods",
                                                                             "nr_throttled",
                                                                             "throttled_ns",
                                                                             "limit_cpus"};

struct Rule {
  SampleBuilder::Field field;
  FieldType type;
};

// The fields of each kind, in the order userspace/agent/sample.cc writes
// them, so the first problem reported is the first one in a line. The
// columns the collector indexes (ts_ns, start_time_ns, cpu_ns) must fit
// SQLite's signed INTEGER.
constexpr Rule kProcessRules[] = {
    {SampleBuilder::kTsNs, FieldType::i64max},        {SampleBuilder::kIntervalNs, FieldType::u64},
    {SampleBuilder::kHost, FieldType::string},        {SampleBuilder::kPid, FieldType::u32},
    {SampleBuilder::kStartTimeNs, FieldType::i64max}, {SampleBuilder::kComm, FieldType::string},
    {SampleBuilder::kCmdline, FieldType::string},     {SampleBuilder::kCgroup, FieldType::string},
    {SampleBuilder::kCpuNs, FieldType::i64max},       {SampleBuilder::kCpuPct, FieldType::number},
    {SampleBuilder::kRssBytes, FieldType::u64},       {SampleBuilder::kExited, FieldType::boolean}};

constexpr Rule kHostRules[] = {
    {SampleBuilder::kTsNs, FieldType::i64max},   {SampleBuilder::kIntervalNs, FieldType::u64},
    {SampleBuilder::kHost, FieldType::string},   {SampleBuilder::kNcpu, FieldType::u32},
    {SampleBuilder::kBusyNs, FieldType::u64},    {SampleBuilder::kCpuPct, FieldType::number},
    {SampleBuilder::kProcesses, FieldType::u32}, {SampleBuilder::kDroppedUpdates, FieldType::u64}};

// Optional fields: checked only when present.
constexpr Rule kOptionalProcessRules[] = {{SampleBuilder::kContainerId, FieldType::string},
                                          {SampleBuilder::kContainerRuntime, FieldType::string},
                                          {SampleBuilder::kPodUid, FieldType::string},
                                          {SampleBuilder::kPodQos, FieldType::string},
                                          {SampleBuilder::kPod, FieldType::string},
                                          {SampleBuilder::kNamespace, FieldType::string},
                                          {SampleBuilder::kContainer, FieldType::string},
                                          {SampleBuilder::kWaitNs, FieldType::i64max},
                                          {SampleBuilder::kWaitPct, FieldType::number}};

constexpr Rule kOptionalHostRules[] = {{SampleBuilder::kStealNs, FieldType::u64},
                                       {SampleBuilder::kPsiSomeNs, FieldType::u64},
                                       {SampleBuilder::kPsiFullNs, FieldType::u64},
                                       {SampleBuilder::kUnaccountedNs, FieldType::i64},
                                       {SampleBuilder::kBpfRunNs, FieldType::u64}};

constexpr Rule kCgroupRules[] = {
    {SampleBuilder::kTsNs, FieldType::i64max},     {SampleBuilder::kIntervalNs, FieldType::u64},
    {SampleBuilder::kHost, FieldType::string},     {SampleBuilder::kCgroup, FieldType::string},
    {SampleBuilder::kProcesses, FieldType::u32},   {SampleBuilder::kProcessCpuNs, FieldType::u64},
    {SampleBuilder::kLimitCpus, FieldType::number}};

constexpr Rule kOptionalCgroupRules[] = {{SampleBuilder::kContainerId, FieldType::string},
                                         {SampleBuilder::kContainerRuntime, FieldType::string},
                                         {SampleBuilder::kPodUid, FieldType::string},
                                         {SampleBuilder::kPodQos, FieldType::string},
                                         {SampleBuilder::kPod, FieldType::string},
                                         {SampleBuilder::kNamespace, FieldType::string},
                                         {SampleBuilder::kContainer, FieldType::string},
                                         {SampleBuilder::kCpuNs, FieldType::u64},
                                         {SampleBuilder::kCpuPct, FieldType::number},
                                         {SampleBuilder::kNrPeriods, FieldType::u64},
                                         {SampleBuilder::kNrThrottled, FieldType::u64},
                                         {SampleBuilder::kThrottledNs, FieldType::u64},
                                         {SampleBuilder::kPsiSomeNs, FieldType::u64},
                                         {SampleBuilder::kPsiFullNs, FieldType::u64}};

// Checks each rule's field: a missing one breaks a required rule and passes
// an optional one. The error is the first problem, "field: problem".
Status check_rules(std::span<const Rule> rules, bool required,
                   const std::array<bool, SampleBuilder::kFieldCount>& seen,
                   const std::array<JsonValue, SampleBuilder::kFieldCount>& values) {
  for (const Rule& r : rules) {
    if (!seen[r.field] && !required) continue;
    const JsonValue* v = seen[r.field] ? &values[r.field] : nullptr;
    if (auto problem = check_field(v, r.type)) {
      return Error::format("{}: {}", kNames[r.field], *problem);
    }
  }
  return ok_status();
}

// A process's names: what it is, not what it did in the interval. Stored
// once per process (the names row), and left out of version 2 samples.
bool is_name(int field) {
  switch (field) {
    case SampleBuilder::kComm:
    case SampleBuilder::kCmdline:
    case SampleBuilder::kCgroup:
    case SampleBuilder::kContainerId:
    case SampleBuilder::kContainerRuntime:
    case SampleBuilder::kPodUid:
    case SampleBuilder::kPodQos:
    case SampleBuilder::kPod:
    case SampleBuilder::kNamespace:
    case SampleBuilder::kContainer:
      return true;
    default:
      return false;
  }
}

int find_field(std::string_view k) {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == k) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace

void SampleBuilder::begin() {
  json_.clear();
  json_.reserve(512);  // a typical process line is ~350 bytes; json_ is moved out per sample
  json_.push_back('{');
  levels_.assign(1, Level{false, true});
  current_field_ = -1;
  in_names_ = false;
  names_.clear();
  names_at_.reset();
  seen_.fill(false);
  duplicate_field_ = -1;
}

void SampleBuilder::before_value() {
  Level& level = levels_.back();
  if (!level.is_array) return;  // the key already wrote the separator
  if (!level.empty) out().push_back(',');
  level.empty = false;
}

void SampleBuilder::key(std::string_view k) {
  if (at_top()) {
    current_field_ = find_field(k);
    if (current_field_ >= 0 && seen_[current_field_] && duplicate_field_ < 0) {
      duplicate_field_ = current_field_;
    }
    // The names leave json_ where they stand; the top level's separator
    // state is json_'s, so it is left alone.
    in_names_ = current_field_ >= 0 && is_name(current_field_);
    if (in_names_) {
      if (!names_at_) names_at_ = json_.size();
      if (!names_.empty()) names_.push_back(',');
      append_json_string(names_, k);
      names_.push_back(':');
      return;
    }
  }
  Level& level = levels_.back();
  std::string& o = out();
  if (!level.empty) o.push_back(',');
  level.empty = false;
  append_json_string(o, k);
  o.push_back(':');
}

void SampleBuilder::scalar(JsonValue v, std::string_view number_text) {
  before_value();
  std::string& o = out();
  switch (v.type) {
    case JsonValue::Type::null:
      o += "null";
      break;
    case JsonValue::Type::boolean:
      o += v.boolean ? "true" : "false";
      break;
    case JsonValue::Type::string:
      append_json_string(o, v.text);
      break;
    default:
      o += number_text;
      break;
  }
  if (at_top() && current_field_ >= 0) {
    values_[current_field_] = std::move(v);
    seen_[current_field_] = true;
  }
}

void SampleBuilder::open(bool is_array) {
  before_value();
  out().push_back(is_array ? '[' : '{');
  if (at_top() && current_field_ >= 0) {
    values_[current_field_] =
        JsonValue{is_array ? JsonValue::Type::array : JsonValue::Type::object};
    seen_[current_field_] = true;
  }
  levels_.push_back(Level{is_array, true});
}

void SampleBuilder::close() {
  out().push_back(levels_.back().is_array ? ']' : '}');
  levels_.pop_back();
}

Result<StoredSample> SampleBuilder::finish(std::uint64_t index) {
  in_names_ = false;
  json_.push_back('}');
  if (duplicate_field_ >= 0) return Error::format("{}: duplicate key", kNames[duplicate_field_]);

  const JsonValue* kind = seen_[kKind] ? &values_[kKind] : nullptr;
  if (auto problem = check_field(kind, FieldType::string))
    return Error::format("kind: {}", *problem);
  bool is_process = kind->text == "process";
  if (kind->text == "cgroup") return finish_cgroup(index);
  if (!is_process && kind->text != "host") {
    return Error::format(R"(kind: unknown kind "{}" (expected "process", "host" or "cgroup"))",
                         kind->text);
  }

  // Version 2: a process sample may leave out all three names, to refer to
  // the ones sent before for the same process (the parser refuses that in
  // version 1 bodies). One or two of them is a mistake.
  const bool names_left_out = is_process && !seen_[kComm] && !seen_[kCmdline] && !seen_[kCgroup];
  auto check = [&](const auto& rules) -> Status {
    for (const Rule& r : rules) {
      if (names_left_out && is_name(r.field)) continue;
      const JsonValue* v = seen_[r.field] ? &values_[r.field] : nullptr;
      if (v == nullptr && is_name(r.field)) {
        return Error::format(
            "{}: missing (a process sample gives comm, cmdline and cgroup, or none of them to "
            "refer to the names sent before)",
            kNames[r.field]);
      }
      if (auto problem = check_field(v, r.type)) {
        return Error::format("{}: {}", kNames[r.field], *problem);
      }
    }
    return ok_status();
  };
  Status checked = is_process ? check(kProcessRules) : check(kHostRules);
  if (!checked.ok()) return checked.error();
  TALLY_TRY(check_rules(is_process ? std::span<const Rule>(kOptionalProcessRules)
                                   : std::span<const Rule>(kOptionalHostRules),
                        false, seen_, values_));

  StoredSample s;
  s.index = index;
  s.host = values_[kHost].text;
  s.ts_ns = values_[kTsNs].number;
  s.interval_ns = values_[kIntervalNs].number;
  if (is_process) {
    s.pid = static_cast<std::uint32_t>(values_[kPid].number);
    s.start_time_ns = values_[kStartTimeNs].number;
    s.cpu_ns = values_[kCpuNs].number;
    s.rss_bytes = values_[kRssBytes].number;
    s.exited = values_[kExited].boolean;
    s.extended = seen_[kWaitNs];
    s.wait_ns = values_[kWaitNs].number;
    s.names = std::move(names_);
    // Names left out are spliced back as the last members.
    s.names_at = names_at_.value_or(json_.size() - 1);
  } else {
    s.ncpu = static_cast<std::uint32_t>(values_[kNcpu].number);
    s.busy_ns = values_[kBusyNs].number;
    s.processes = static_cast<std::uint32_t>(values_[kProcesses].number);
    s.dropped_updates = values_[kDroppedUpdates].number;
    s.extended = seen_[kStealNs];
    s.steal_ns = values_[kStealNs].number;
    s.psi_some_ns = values_[kPsiSomeNs].number;
    s.psi_full_ns = values_[kPsiFullNs].number;
    s.unaccounted_ns = static_cast<std::int64_t>(values_[kUnaccountedNs].number);
    s.bpf_run_ns = values_[kBpfRunNs].number;
  }
  s.json = std::move(json_);
  s.canonical = is_canonical(s);
  return s;
}

Result<StoredSample> SampleBuilder::finish_cgroup(std::uint64_t index) {
  TALLY_TRY(check_rules(kCgroupRules, true, seen_, values_));
  TALLY_TRY(check_rules(kOptionalCgroupRules, false, seen_, values_));
  StoredSample s;
  s.index = index;
  s.is_cgroup = true;
  s.host = values_[kHost].text;
  s.ts_ns = values_[kTsNs].number;
  s.interval_ns = values_[kIntervalNs].number;
  // The path and container fields were taken aside as a process's names
  // would be: a cgroup line keeps them in its text, stored as received.
  s.json = with_names(json_, names_at_.value_or(0), names_);
  names_.clear();
  json_.clear();
  return s;
}

}  // namespace tally::collector
