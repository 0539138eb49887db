#include "shipping/remote_write_format.h"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include "remote_write.pb.h"
#include "shipping/snappy_block.h"
#include "tally/log.h"
#include "tally/utf8.h"

namespace tally::shipping {

namespace {

namespace pb = tally::remote_write;
using samples::CgroupSample;
using samples::HostSample;
using samples::ProcessSample;

// Label pairs of one series, __name__ excluded; sorted before use.
using Labels = std::vector<std::pair<std::string_view, std::string>>;

// Process series not seen for this many intervals are forgotten (an exit
// tally missed); other series after an hour.
constexpr std::uint64_t kProcessIdleIntervals = 10;
constexpr std::uint64_t kSeriesIdleNs = 3'600'000'000'000ULL;

void add_label(Labels& labels, std::string_view name, std::string_view value) {
  // Prometheus has no empty label values (an empty one is an absent label),
  // and refuses a whole request over one that is not valid UTF-8.
  if (!value.empty()) labels.emplace_back(name, utf8_sanitized(value));
}

// The hash of `name{a="x",b="y"}` (label values escaped as in the text
// format, so unambiguous for any value), built in `buffer`, which is reused
// so that a batch does not allocate a key per series.
std::uint64_t series_key_hash(std::string& buffer, std::string_view name, const Labels& sorted) {
  buffer.assign(name);
  buffer += '{';
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0) buffer += ',';
    buffer += sorted[i].first;
    buffer += "=\"";
    for (char c : sorted[i].second) {
      if (c == '\\' || c == '"') buffer += '\\';
      if (c == '\n') {
        buffer += "\\n";
        continue;
      }
      buffer += c;
    }
    buffer += '"';
  }
  buffer += '}';
  return series_hash(buffer);
}

// Builds one WriteRequest: a TimeSeries per series, samples in time order.
// Its messages live in an arena: one allocation per block, not per label.
class RequestBuilder {
 public:
  explicit RequestBuilder(RemoteWriteState& state)
      : state_(state),
        request_(google::protobuf::Arena::CreateMessage<pb::WriteRequest>(&arena_)) {}

  // The interval the next calls are about.
  void at(std::uint64_t ts_ns, std::uint64_t interval_ns) {
    ts_ns_ = ts_ns;
    ts_ms_ = static_cast<std::int64_t>(ts_ns / 1'000'000);
    prev_ms_ = static_cast<std::int64_t>((ts_ns - std::min(ts_ns, interval_ns)) / 1'000'000);
  }

  // A counter series (labels sorted by name): adds `delta` to its sum and,
  // when `emit`, sends the sum (times `scale`), after the unchanged sum at
  // the end of the interval before if the series was not sent then.
  // Returns the series' hash.
  std::uint64_t counter(std::string_view name, const Labels& labels, std::uint64_t delta, bool emit,
                        bool is_process, double scale = 1e-9) {
    const std::uint64_t hash = series_key_hash(key_, name, labels);
    SeriesCounter& c = (is_process ? state_.processes : state_.series).at(hash);
    const std::uint64_t before = c.total;
    c.total += delta;
    c.seen_ns = ts_ns_;
    if (!emit) return hash;
    pb::TimeSeries& series = series_for(hash, name, labels);
    if (static_cast<std::int64_t>(c.sent_ms) < prev_ms_ && prev_ms_ > 0) {
      add_sample(series, prev_ms_, static_cast<double>(before) * scale);
    }
    add_sample(series, ts_ms_, static_cast<double>(c.total) * scale);
    c.sent_ms = static_cast<std::uint64_t>(ts_ms_);
    return hash;
  }

  void gauge(std::string_view name, const Labels& labels, double value, bool emit) {
    if (!emit) return;
    add_sample(series_for(series_key_hash(key_, name, labels), name, labels), ts_ms_, value);
  }

  // A process that exited: its series is forgotten two intervals from now.
  // Not at once: a pid reused under the same name in the next interval
  // then continues the series (its counter still only grows), rather than
  // starting again from 0 with a first sample at the very timestamp of the
  // old process's last one, which Prometheus would refuse as a duplicate.
  void process_ended(std::uint64_t hash, std::uint64_t interval_ns) {
    SeriesCounter* c = state_.processes.find(hash);
    if (c == nullptr) return;
    const std::uint64_t keep = interval_ns * 2;
    const std::uint64_t horizon = interval_ns * kProcessIdleIntervals;
    c->seen_ns = ts_ns_ + keep > horizon ? ts_ns_ + keep - horizon : 0;
  }
  // Forgets process series unseen for kProcessIdleIntervals (an exit tally
  // missed, or one ended above), other series after an hour.
  void sweep(std::uint64_t interval_ns) {
    const std::uint64_t process_horizon = interval_ns * kProcessIdleIntervals;
    state_.processes.erase_if(
        [&](const SeriesCounter& c) { return c.seen_ns + process_horizon < ts_ns_; });
    state_.series.erase_if(
        [&](const SeriesCounter& c) { return c.seen_ns + kSeriesIdleNs < ts_ns_; });
  }

  const pb::WriteRequest& request() const { return *request_; }

 private:
  pb::TimeSeries& series_for(std::uint64_t hash, std::string_view name, const Labels& sorted) {
    auto [it, fresh] = index_.emplace(hash, request_->timeseries_size());
    if (!fresh) return *request_->mutable_timeseries(static_cast<int>(it->second));
    pb::TimeSeries* series = request_->add_timeseries();
    pb::Label* n = series->add_labels();
    n->set_name("__name__");
    n->set_value(std::string(name));
    for (const auto& [label, value] : sorted) {
      pb::Label* l = series->add_labels();
      l->set_name(std::string(label));
      l->set_value(value);
    }
    return *series;
  }

  static void add_sample(pb::TimeSeries& series, std::int64_t ts_ms, double value) {
    const int n = series.samples_size();
    // A series can come twice at one timestamp only when intervals were
    // shorter than a millisecond apart; keep the later value.
    if (n > 0 && series.samples(n - 1).timestamp() >= ts_ms) {
      series.mutable_samples(n - 1)->set_value(value);
      return;
    }
    pb::Sample* s = series.add_samples();
    s->set_value(value);
    s->set_timestamp(ts_ms);
  }

  RemoteWriteState& state_;
  google::protobuf::Arena arena_;
  pb::WriteRequest* request_;
  std::unordered_map<std::uint64_t, std::size_t> index_;  // series hash -> position
  std::string key_;                                       // reused by series_key_hash
  std::uint64_t ts_ns_ = 0;
  std::int64_t ts_ms_ = 0;
  std::int64_t prev_ms_ = 0;
};

// Labels sorted by name, as a series wants them.
Labels sorted(Labels labels) {
  std::sort(labels.begin(), labels.end());
  return labels;
}

Labels host_labels(const std::string& host) {
  Labels l;
  add_label(l, "host", host);
  return l;
}

Labels process_labels(const ProcessSample& p) {
  Labels l = host_labels(p.host);
  add_label(l, "pid", fmt::format("{}", p.pid));
  add_label(l, "comm", p.comm);
  add_label(l, "cgroup", p.cgroup);
  add_label(l, "container", p.container);
  add_label(l, "pod", p.pod);
  add_label(l, "namespace", p.pod_namespace);
  return sorted(std::move(l));
}

void process_series(RequestBuilder& b, const ProcessSample& p, bool emit) {
  const Labels labels = process_labels(p);
  const std::uint64_t cpu =
      b.counter("tally_process_cpu_seconds_total", labels, p.cpu_ns, emit, true);
  const std::uint64_t wait =
      b.counter("tally_process_cpu_wait_seconds_total", labels, p.wait_ns, emit, true);
  b.gauge("tally_process_resident_memory_bytes", labels, static_cast<double>(p.rss_bytes), emit);
  if (p.exited) {
    b.process_ended(cpu, p.interval_ns);
    b.process_ended(wait, p.interval_ns);
  }
}

void remainder_series(RequestBuilder& b, const IntervalRollup& r, bool emit) {
  const Labels host = host_labels(r.host);
  b.counter("tally_other_cpu_seconds_total", host, r.other.cpu_ns, emit, false);
  b.counter("tally_other_cpu_wait_seconds_total", host, r.other.wait_ns, emit, false);
  b.gauge("tally_other_processes", host, r.other.processes, emit);
  for (const GroupRollup& g : r.groups) {
    Labels l = host;
    add_label(l, "by", g.by);
    add_label(l, "group", g.name);
    l = sorted(std::move(l));
    b.counter("tally_group_cpu_seconds_total", l, g.total.cpu_ns, emit, false);
    b.counter("tally_group_cpu_wait_seconds_total", l, g.total.wait_ns, emit, false);
    b.counter("tally_group_other_cpu_seconds_total", l, g.other.cpu_ns, emit, false);
    b.gauge("tally_group_processes", l, g.total.processes, emit);
    b.gauge("tally_group_resident_memory_bytes", l, static_cast<double>(g.total.rss_bytes), emit);
  }
}

void host_series(RequestBuilder& b, const HostSample& h, bool emit) {
  const Labels l = host_labels(h.host);
  b.counter("tally_host_cpu_busy_seconds_total", l, h.busy_ns, emit, false);
  b.counter("tally_host_steal_seconds_total", l, h.steal_ns, emit, false);
  b.counter("tally_host_cpu_pressure_some_seconds_total", l, h.psi_some_ns, emit, false);
  b.counter("tally_host_cpu_pressure_full_seconds_total", l, h.psi_full_ns, emit, false);
  b.counter("tally_host_dropped_updates_total", l, h.dropped_updates, emit, false, 1.0);
  b.gauge("tally_host_cpus", l, h.ncpu, emit);
  b.gauge("tally_host_processes", l, h.processes, emit);
  b.gauge("tally_host_cpu_unaccounted_seconds", l, static_cast<double>(h.unaccounted_ns) / 1e9,
          emit);
}

void cgroup_series(RequestBuilder& b, const CgroupSample& c, bool emit) {
  Labels l = host_labels(c.host);
  add_label(l, "cgroup", c.cgroup);
  add_label(l, "container", c.container);
  add_label(l, "pod", c.pod);
  add_label(l, "namespace", c.pod_namespace);
  l = sorted(std::move(l));
  b.counter("tally_cgroup_process_cpu_seconds_total", l, c.process_cpu_ns, emit, false);
  b.gauge("tally_cgroup_processes", l, c.processes, emit);
  if (c.usage_known) b.counter("tally_cgroup_cpu_seconds_total", l, c.cpu_ns, emit, false);
  if (c.throttling_known) {
    b.counter("tally_cgroup_periods_total", l, c.nr_periods, emit, false, 1.0);
    b.counter("tally_cgroup_throttled_periods_total", l, c.nr_throttled, emit, false, 1.0);
    b.counter("tally_cgroup_throttled_seconds_total", l, c.throttled_ns, emit, false);
  }
  if (c.pressure_known) {
    b.counter("tally_cgroup_cpu_pressure_some_seconds_total", l, c.psi_some_ns, emit, false);
    b.counter("tally_cgroup_cpu_pressure_full_seconds_total", l, c.psi_full_ns, emit, false);
  }
  if (c.limit_cpus > 0) b.gauge("tally_cgroup_limit_cpus", l, c.limit_cpus, emit);
}

const RemoteWriteState& empty_state() {
  static const RemoteWriteState empty;
  return empty;
}

}  // namespace

bool refuses_old_data(std::string_view body) {
  for (std::string_view phrase : {"out of order", "out-of-order", "out of bounds", "too old",
                                  "too far in the past", "sample timestamp too old"}) {
    if (body.find(phrase) != std::string_view::npos) return true;
  }
  return false;
}

RemoteWriteFormat::RemoteWriteFormat(RemoteWriteOptions options, GroupMatcher groups)
    : options_(std::move(options)), groups_(std::move(groups)) {
  // Series are named by pid: two processes of one pid in one interval (a pid
  // reused) cannot both have one.
  options_.rollup.one_per_pid = true;
  if (options_.state_path.empty()) return;
  file_.emplace(options_.state_path);
  auto loaded = file_->load();
  if (!loaded.ok()) {
    // Counters start again from 0, which Prometheus reads as one reset per
    // series: rate() stays right, a raw counter value does not.
    log::warning("sink {}: remote write counters: {}; starting them afresh", options_.sink,
                 loaded.error().message());
  } else if (*loaded) {
    states_ = std::move(**loaded);
  }
}

Result<std::string> RemoteWriteFormat::compress(std::string_view body, int /*level*/) const {
  return snappy_compress(body);
}

std::vector<std::string> RemoteWriteFormat::extra_headers() const {
  return {"X-Prometheus-Remote-Write-Version: 0.1.0"};
}

const RemoteWriteState& RemoteWriteFormat::base_for(std::uint64_t seq) const {
  if (states_.current.after_seq < seq) return states_.current;
  // The batch the file's counters already include, sent again after a
  // crash before the outbox heard of its ack: from the counters before it.
  if (states_.previous && states_.previous->after_seq < seq) return *states_.previous;
  // Seqs behind the counters: a new outbox. Its counters start afresh.
  return empty_state();
}

Result<std::string> RemoteWriteFormat::encode(const queue::Batch& batch,
                                              std::span<const samples::Sample> samples,
                                              std::uint32_t first, std::uint32_t count) const {
  if (batch.kind == queue::Batch::Kind::gap) {
    return Error::format("encode batch {}: remote write cannot carry a gap record", batch.seq);
  }
  if (static_cast<std::size_t>(first) + count > samples.size()) {
    return Error::format("encode batch {}: piece {}+{} outside its {} samples", batch.seq, first,
                         count, samples.size());
  }
  // The counters advance over the whole batch whatever the piece, so that
  // every piece is encoded from the same sums; a piece only picks which
  // samples it sends.
  RemoteWriteState next = base_for(batch.seq);
  next.after_seq = batch.seq;
  const auto in_piece = [&](std::uint32_t i) { return i >= first && i < first + count; };
  RequestBuilder b(next);
  std::uint64_t last_ts = 0, last_interval = 0;
  std::size_t cgroup_cursor = 0;
  const auto cgroups_until = [&](std::size_t end) {
    for (; cgroup_cursor < end; ++cgroup_cursor) {
      if (const auto* c = std::get_if<CgroupSample>(&samples[cgroup_cursor])) {
        b.at(c->ts_ns, c->interval_ns);
        cgroup_series(b, *c, in_piece(static_cast<std::uint32_t>(cgroup_cursor)));
      }
    }
  };
  RollupOptions rollup = options_.rollup;
  rollup.groups = &groups_;
  for (const IntervalRollup& r : roll_up(samples, rollup)) {
    b.at(r.ts_ns, r.interval_ns);
    std::size_t s = 0;
    for (std::uint32_t i : r.lines) {
      const bool shipped = s < r.shipped.size() && r.shipped[s] == i;
      if (shipped) ++s;
      b.at(r.ts_ns, r.interval_ns);
      if (shipped) process_series(b, std::get<ProcessSample>(samples[i]), in_piece(i));
    }
    if (!r.has_host) continue;
    const auto* host = &std::get<HostSample>(samples[r.host_index]);
    cgroups_until(r.host_index);
    b.at(r.ts_ns, r.interval_ns);
    const bool emit = in_piece(r.host_index);
    if (r.complete) remainder_series(b, r, emit);
    host_series(b, *host, emit);
    last_ts = std::max(last_ts, r.ts_ns);
    last_interval = r.interval_ns;
  }
  cgroups_until(samples.size());
  if (last_ts > 0) {
    b.at(last_ts, last_interval);
    b.sweep(last_interval);
  }
  std::string body;
  if (!b.request().SerializeToString(&body)) {
    return Error::format("encode batch {}: protobuf serialisation failed", batch.seq);
  }
  encoded_seq_ = batch.seq;
  encoded_ = std::move(next);
  return body;
}

void RemoteWriteFormat::acknowledged(std::span<const samples::Sample> samples, std::uint32_t first,
                                     std::uint32_t count) {
  finish_piece(samples, first, count);
}

void RemoteWriteFormat::dead_lettered(std::span<const samples::Sample> samples, std::uint32_t first,
                                      std::uint32_t count) {
  // The counters still count what the server refused: its series then show
  // the refused intervals' CPU as one larger increase later, rather than
  // losing it from every rate().
  finish_piece(samples, first, count);
}

void RemoteWriteFormat::finish_piece(std::span<const samples::Sample> samples, std::uint32_t first,
                                     std::uint32_t count) {
  if (static_cast<std::size_t>(first) + count != samples.size() || !encoded_) return;
  RemoteWriteStates next;
  next.previous = base_for(encoded_seq_);
  next.current = std::move(*encoded_);
  encoded_.reset();
  states_ = std::move(next);
  if (!file_) return;
  if (auto st = file_->save(states_); !st.ok()) {
    // Kept in memory all the same; only a restart before the next good save
    // would start the counters afresh.
    log::warning("sink {}: remote write counters not saved: {}", options_.sink,
                 st.error().message());
  }
}

Verdict RemoteWriteFormat::judge(const HttpResponse& response) const {
  Verdict v{classify(response.status), 0, {}};
  if (v.outcome == Outcome::reject && refuses_old_data(response.body)) v.old_data = true;
  return v;
}

}  // namespace tally::shipping
