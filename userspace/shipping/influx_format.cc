#include "shipping/influx_format.h"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "shipping/line_protocol.h"

namespace tally::shipping {

namespace {

std::uint64_t scale(std::uint64_t ts_ns, TimePrecision p) {
  switch (p) {
    case TimePrecision::ns:
      return ts_ns;
    case TimePrecision::us:
      return ts_ns / 1'000;
    case TimePrecision::ms:
      return ts_ns / 1'000'000;
    case TimePrecision::s:
      return ts_ns / 1'000'000'000;
  }
  return ts_ns;
}

void tag(std::string& out, std::string_view key, std::string_view value) {
  if (value.empty()) return;  // the protocol has no empty tag values
  out += ',';
  out += key;
  out += '=';
  line_protocol::append_key(out, value);
}

// Tags in lexical key order, as the servers store them, which spares them a
// sort per point. Container and pod names are tags (a pod's processes are
// queried together); the container id is not, since every restart makes a
// new one and a tag value is a new series.
void process_line(std::string& out, const samples::ProcessSample& r, bool start_tag,
                  const InfluxOptions& o) {
  out += "tally_process";
  tag(out, "cgroup", r.cgroup);
  tag(out, "comm", r.comm);
  tag(out, "container", r.container);
  tag(out, "host", r.host);
  tag(out, "namespace", r.pod_namespace);
  fmt::format_to(std::back_inserter(out), ",pid={}", r.pid);
  tag(out, "pod", r.pod);
  if (start_tag) fmt::format_to(std::back_inserter(out), ",start_time={}", r.start_time_ns);
  fmt::format_to(std::back_inserter(out),
                 " cpu_ns={}i,cpu_pct={},wait_ns={}i,wait_pct={},rss_bytes={}i,start_time_ns={}i,"
                 "interval_ns={}i,exited={}",
                 r.cpu_ns, r.cpu_pct, r.wait_ns, r.wait_pct, r.rss_bytes, r.start_time_ns,
                 r.interval_ns, r.exited ? "true" : "false");
  if (o.cmdline && !r.cmdline.empty()) {
    out += ",cmdline=";
    line_protocol::append_string_field(out, r.cmdline);
  }
  fmt::format_to(std::back_inserter(out), " {}\n", scale(r.ts_ns, o.precision));
}

void host_line(std::string& out, const samples::HostSample& r, const InfluxOptions& o) {
  out += "tally_host";
  tag(out, "host", r.host);
  fmt::format_to(std::back_inserter(out),
                 " busy_ns={}i,cpu_pct={},ncpu={}i,processes={}i,dropped_updates={}i,"
                 "steal_ns={}i,psi_some_ns={}i,psi_full_ns={}i,unaccounted_ns={}i,bpf_run_ns={}i,"
                 "interval_ns={}i {}\n",
                 r.busy_ns, r.cpu_pct, r.ncpu, r.processes, r.dropped_updates, r.steal_ns,
                 r.psi_some_ns, r.psi_full_ns, r.unaccounted_ns, r.bpf_run_ns, r.interval_ns,
                 scale(r.ts_ns, o.precision));
}

// A cgroup's line. Fields the host does not offer are left out rather than
// written as 0: a missing throttled_ns is not an unthrottled cgroup.
void cgroup_line(std::string& out, const samples::CgroupSample& r, const InfluxOptions& o) {
  out += "tally_cgroup";
  tag(out, "cgroup", r.cgroup);
  tag(out, "container", r.container);
  tag(out, "host", r.host);
  tag(out, "namespace", r.pod_namespace);
  tag(out, "pod", r.pod);
  fmt::format_to(std::back_inserter(out), " processes={}i,process_cpu_ns={}i,limit_cpus={}",
                 r.processes, r.process_cpu_ns, r.limit_cpus);
  if (r.usage_known) {
    fmt::format_to(std::back_inserter(out), ",cpu_ns={}i,cpu_pct={}", r.cpu_ns, r.cpu_pct);
  }
  if (r.throttling_known) {
    fmt::format_to(std::back_inserter(out), ",nr_periods={}i,nr_throttled={}i,throttled_ns={}i",
                   r.nr_periods, r.nr_throttled, r.throttled_ns);
  }
  if (r.pressure_known) {
    fmt::format_to(std::back_inserter(out), ",psi_some_ns={}i,psi_full_ns={}i", r.psi_some_ns,
                   r.psi_full_ns);
  }
  fmt::format_to(std::back_inserter(out), ",interval_ns={}i {}\n", r.interval_ns,
                 scale(r.ts_ns, o.precision));
}

// The interval's remainder and groups (interval_rollup.h).
void rollup_lines(std::string& out, const IntervalRollup& r, const InfluxOptions& o) {
  const std::uint64_t ts = scale(r.ts_ns, o.precision);
  out += "tally_other";
  tag(out, "host", r.host);
  fmt::format_to(std::back_inserter(out),
                 " cpu_ns={}i,wait_ns={}i,processes={}i,interval_ns={}i {}\n", r.other.cpu_ns,
                 r.other.wait_ns, r.other.processes, r.interval_ns, ts);
  for (const GroupRollup& g : r.groups) {
    out += "tally_group";
    tag(out, "by", g.by);
    tag(out, "group", g.name);
    tag(out, "host", r.host);
    fmt::format_to(std::back_inserter(out),
                   " cpu_ns={}i,wait_ns={}i,rss_bytes={}i,processes={}i,other_cpu_ns={}i,"
                   "other_wait_ns={}i,interval_ns={}i {}\n",
                   g.total.cpu_ns, g.total.wait_ns, g.total.rss_bytes, g.total.processes,
                   g.other.cpu_ns, g.other.wait_ns, r.interval_ns, ts);
  }
}

}  // namespace

Result<std::string> InfluxFormat::encode(const queue::Batch& batch,
                                         std::span<const samples::Sample> samples,
                                         std::uint32_t first, std::uint32_t count) const {
  if (batch.kind == queue::Batch::Kind::gap) {
    return Error::format("encode batch {}: influx cannot carry a gap record", batch.seq);
  }
  if (static_cast<std::size_t>(first) + count > samples.size()) {
    return Error::format("encode batch {}: piece {}+{} outside its {} samples", batch.seq, first,
                         count, samples.size());
  }
  // Every sample of the batch is looked at, not only the piece's: whether a
  // sample needs its start_time tag depends on the others, and must not
  // change when a 413 splits the batch, so a retried piece is the same points.
  // (ts, pid) pairs that occur more than once, sorted for binary search.
  std::vector<std::pair<std::uint64_t, std::uint32_t>> keys, reused;
  keys.reserve(samples.size());
  for (const samples::Sample& sample : samples) {
    if (const auto* p = std::get_if<samples::ProcessSample>(&sample)) {
      keys.emplace_back(p->ts_ns, p->pid);
    }
  }
  std::sort(keys.begin(), keys.end());
  for (std::size_t i = 1; i < keys.size(); ++i) {
    if (keys[i] == keys[i - 1] && (reused.empty() || reused.back() != keys[i])) {
      reused.push_back(keys[i]);
    }
  }

  RollupOptions rollup = options_.rollup;
  rollup.groups = &groups_;
  const RollupPlan plan = plan_rollups(samples, rollup);
  std::string body;
  body.reserve(count * 256);
  for (std::uint32_t i = first; i < first + count; ++i) {
    const samples::Sample& sample = samples[i];
    if (!plan.sent[i]) continue;
    if (const auto* p = std::get_if<samples::ProcessSample>(&sample)) {
      const bool start_tag =
          std::binary_search(reused.begin(), reused.end(), std::make_pair(p->ts_ns, p->pid));
      process_line(body, *p, start_tag, options_);
    } else if (const auto* h = std::get_if<samples::HostSample>(&sample)) {
      host_line(body, *h, options_);
      if (plan.at_host[i] != nullptr && plan.at_host[i]->complete) {
        rollup_lines(body, *plan.at_host[i], options_);
      }
    } else if (const auto* c = std::get_if<samples::CgroupSample>(&sample)) {
      cgroup_line(body, *c, options_);
    }
  }
  return body;
}

Outcome InfluxFormat::classify(long status) const {
  // 404: no such database yet, which the operator creates; 401/403 are
  // retried by every format.
  if (status == 404) return Outcome::retry;
  return SinkFormat::classify(status);
}

std::optional<TimePrecision> parse_precision(std::string_view text) {
  if (text == "ns") return TimePrecision::ns;
  if (text == "us") return TimePrecision::us;
  if (text == "ms") return TimePrecision::ms;
  if (text == "s") return TimePrecision::s;
  return std::nullopt;
}

namespace {

std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

}  // namespace

std::string influx_write_url(const std::string& url, const std::string& database,
                             TimePrecision precision) {
  // Both servers accept these spellings ("u" is InfluxDB 1.x's microsecond).
  const char* p = precision == TimePrecision::ns   ? "ns"
                  : precision == TimePrecision::us ? "u"
                  : precision == TimePrecision::ms ? "ms"
                                                   : "s";
  std::string out = url;
  const auto hash = out.find('#');
  if (hash != std::string::npos) out.resize(hash);
  out += out.find('?') == std::string::npos ? '?' : '&';
  if (!database.empty()) out += "db=" + url_encode(database) + "&";
  out += "precision=";
  out += p;
  return out;
}

}  // namespace tally::shipping
