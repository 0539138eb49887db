#include "samples/compact_records.h"

#include <algorithm>
#include <array>
#include <functional>

#include <fmt/format.h>

#include "samples/json_line_reader.h"
#include "tally/varint.h"

namespace tally::samples {
namespace {

// Enough for every process of a large host and the intervals of a backlog
// batch; past that the caches start again rather than grow.
constexpr std::size_t kNamesCached = 8'192;
constexpr std::size_t kHeadersCached = 1'024;

void put(std::string& out, std::uint64_t v) {
  while (v >= 0x40) {
    out.push_back(static_cast<char>(0x80 | (v & 0x3f)));
    v >>= 6;
  }
  out.push_back(static_cast<char>(0x40 | v));
}

void put(std::string& out, std::string_view s) {
  put(out, static_cast<std::uint64_t>(s.size()));
  out.append(s);
}

// RSS is nearly always whole pages: then the record holds the page count
// and its tag is lower case; upper case holds bytes.
constexpr std::uint64_t kPage = 4096;

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool done() const { return pos_ == in_.size(); }
  Result<char> tag() {
    if (done()) return Error("empty");
    return in_[pos_++];
  }
  Result<std::uint64_t> number() {
    std::uint64_t v = 0;
    for (int shift = 0; pos_ < in_.size() && shift < 66; shift += 6) {
      const auto b = static_cast<unsigned char>(in_[pos_++]);
      if ((b & 0xc0) == 0x40) return v | (static_cast<std::uint64_t>(b & 0x3f) << shift);
      if ((b & 0xc0) != 0x80) {
        return Error::format("byte {:#04x} at {} is not part of a number", b, pos_ - 1);
      }
      v |= static_cast<std::uint64_t>(b & 0x3f) << shift;
    }
    return Error::format("number at {} runs past the end", pos_);
  }
  Result<std::string> text() {
    auto n = number();
    if (!n) return n.error();
    if (*n > in_.size() - pos_) return Error::format("string of {} bytes runs past the end", *n);
    std::string s(in_.substr(pos_, *n));
    pos_ += *n;
    return s;
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

// Reads N numbers into out, or says which one was wrong. The first
// `required` must be there; the rest are fields added later, which records
// stored by an older tallyd end before (they read as 0).
template <std::size_t N>
Status numbers(Reader& in, std::array<std::uint64_t, N>& out, std::size_t required = N) {
  for (std::size_t i = 0; i < N; ++i) {
    if (i >= required && in.done()) return ok_status();
    auto v = in.number();
    if (!v) return v.error().context(fmt::format("field {}", i + 1));
    out[i] = *v;
  }
  if (!in.done()) return Error("bytes after the last field");
  return ok_status();
}

std::string host_record(const HostSample& host, std::uint64_t interval_key) {
  std::string record = "h";
  put(record, interval_key);
  put(record, host.ncpu);
  put(record, host.busy_ns);
  put(record, host.processes);
  put(record, host.dropped_updates);
  put(record, host.steal_ns);
  put(record, host.psi_some_ns);
  put(record, host.psi_full_ns);
  put(record, varint::zigzag(host.unaccounted_ns));
  put(record, host.bpf_run_ns);
  return record;
}

std::string cgroup_record(const CgroupSample& c, std::uint64_t interval_key,
                          std::uint64_t cgroup_key) {
  std::string record = "c";
  put(record, interval_key);
  put(record, cgroup_key);
  put(record, c.processes);
  put(record, c.process_cpu_ns);
  put(record,
      (c.usage_known ? 1u : 0u) | (c.throttling_known ? 2u : 0u) | (c.pressure_known ? 4u : 0u));
  put(record, c.cpu_ns);
  put(record, c.nr_periods);
  put(record, c.nr_throttled);
  put(record, c.throttled_ns);
  put(record, c.psi_some_ns);
  put(record, c.psi_full_ns);
  put(record, cpu_millionths(c.limit_cpus));
  return record;
}

}  // namespace

CompactInterval CompactEncoder::encode(const IntervalSamples& interval) {
  CompactInterval out;
  queue::DictionaryUpdate& dict = out.dictionary;
  dict.retired = std::move(to_retire_);
  to_retire_.clear();

  // One header per (time, length, host) the interval's samples carry: the
  // sampler gives them all the same one, but nothing here depends on it.
  struct Header {
    std::uint64_t key, ts_ns, interval_ns;
    const std::string* host;
  };
  std::vector<Header> headers;
  const auto header_key = [&](std::uint64_t ts_ns, std::uint64_t interval_ns,
                              const std::string& host) {
    for (const Header& h : headers) {
      if (h.ts_ns == ts_ns && h.interval_ns == interval_ns && *h.host == host) return h.key;
    }
    const std::uint64_t key = next_key_++;
    std::string entry = "i";
    put(entry, ts_ns);
    put(entry, interval_ns);
    put(entry, host);
    dict.added.emplace_back(key, std::move(entry));
    dict.retired.push_back(key);  // only this interval's records use it
    headers.push_back({key, ts_ns, interval_ns, &host});
    return key;
  };
  const HostSample& host = interval.host;
  const std::uint64_t interval_key = header_key(host.ts_ns, host.interval_ns, host.host);

  out.records.reserve(interval.processes.size() + interval.cgroups.size() + 1);
  for (const ProcessSample& s : interval.processes) {
    Known& known = known_[{s.pid, s.start_time_ns}];
    const std::uint64_t digest = names_digest(s);  // samples/sample.h
    if (known.key == 0 || known.names_digest != digest) {
      // New, or renamed by an exec: a new key, so that batches stored
      // before keep the names they were committed with.
      if (known.key != 0) dict.retired.push_back(known.key);
      known = Known{next_key_++, digest};
      std::string entry = "n";
      put(entry, s.pid);
      put(entry, s.start_time_ns);
      put(entry, s.comm);
      put(entry, s.cmdline);
      put(entry, s.cgroup);
      for (const std::string* name : container_fields(s)) put(entry, *name);
      dict.added.emplace_back(known.key, std::move(entry));
    }
    const std::uint64_t sample_header = header_key(s.ts_ns, s.interval_ns, s.host);
    const bool pages = s.rss_bytes % kPage == 0;
    std::string record(1, s.exited ? (pages ? 'x' : 'X') : (pages ? 'p' : 'P'));
    put(record, sample_header);
    put(record, known.key);
    put(record, s.cpu_ns);
    put(record, pages ? s.rss_bytes / kPage : s.rss_bytes);
    put(record, s.wait_ns);
    out.records.push_back(std::move(record));
    if (s.exited) {
      dict.retired.push_back(known.key);
      known_.erase({s.pid, s.start_time_ns});
    }
  }
  for (const CgroupSample& c : interval.cgroups) {
    out.records.push_back(
        cgroup_record(c, header_key(c.ts_ns, c.interval_ns, c.host), cgroup_key(c, dict)));
  }
  age_cgroups(dict);
  out.records.push_back(host_record(host, interval_key));
  return out;
}

std::uint64_t CompactEncoder::cgroup_key(const CgroupSample& s, queue::DictionaryUpdate& dict) {
  if (cgroups_.size() >= kMaxCgroupsKnown && !cgroups_.count(s.cgroup)) {
    // A host churning through cgroups: start again rather than grow.
    for (const auto& [path, known] : cgroups_) dict.retired.push_back(known.key);
    cgroups_.clear();
  }
  KnownCgroup& known = cgroups_[s.cgroup];
  const std::uint64_t digest = names_digest(s);
  if (known.key == 0 || known.names_digest != digest) {
    if (known.key != 0) dict.retired.push_back(known.key);
    known = KnownCgroup{next_key_++, digest, 0};
    std::string entry = "g";
    put(entry, s.cgroup);
    for (const std::string* name : container_fields(s)) put(entry, *name);
    dict.added.emplace_back(known.key, std::move(entry));
  }
  known.idle = 0;
  return known.key;
}

void CompactEncoder::age_cgroups(queue::DictionaryUpdate& dict) {
  for (auto it = cgroups_.begin(); it != cgroups_.end();) {
    if (++it->second.idle > kCgroupIdleIntervals) {
      dict.retired.push_back(it->second.key);
      it = cgroups_.erase(it);
    } else {
      ++it;
    }
  }
}

void CompactEncoder::not_stored() {
  for (const auto& [process, known] : known_) to_retire_.push_back(known.key);
  known_.clear();
  for (const auto& [path, known] : cgroups_) to_retire_.push_back(known.key);
  cgroups_.clear();
}

Result<const CompactDecoder::Names*> CompactDecoder::names(std::uint64_t key) {
  if (auto it = names_.find(key); it != names_.end()) return &it->second;
  auto entry = lookup_(key);
  if (!entry) return entry.error();
  if (!*entry) return Error::format("process key {} has no dictionary entry", key);
  Reader in(**entry);
  auto tag = in.tag();
  if (!tag || *tag != 'n') {
    return Error::format("dictionary entry {} is not a process's names", key);
  }
  auto pid = in.number();
  auto start = in.number();
  auto comm = in.text();
  auto cmdline = in.text();
  auto cgroup = in.text();
  if (!pid || !start || !comm || !cmdline || !cgroup) {
    return Error::format("dictionary entry {} is damaged", key);
  }
  Names n;
  n.pid = static_cast<std::uint32_t>(*pid);
  n.start_time_ns = *start;
  n.comm = std::move(*comm);
  n.cmdline = std::move(*cmdline);
  n.cgroup = std::move(*cgroup);
  // Container and pod fields: absent from entries of an older tallyd.
  for (std::string* name : container_fields(n)) {
    if (in.done()) break;
    auto text = in.text();
    if (!text) return Error::format("dictionary entry {} is damaged", key);
    *name = std::move(*text);
  }
  if (!in.done()) return Error::format("dictionary entry {} is damaged", key);
  if (names_.size() >= kNamesCached) names_.clear();
  auto [it, added] = names_.emplace(key, std::move(n));
  return &it->second;
}

Result<const CompactDecoder::Header*> CompactDecoder::header(std::uint64_t key) {
  if (auto it = headers_.find(key); it != headers_.end()) return &it->second;
  auto entry = lookup_(key);
  if (!entry) return entry.error();
  if (!*entry) return Error::format("interval key {} has no dictionary entry", key);
  Reader in(**entry);
  auto tag = in.tag();
  if (!tag || *tag != 'i') return Error::format("dictionary entry {} is not an interval", key);
  auto ts = in.number();
  auto length = in.number();
  auto host = in.text();
  if (!ts || !length || !host || !in.done()) {
    return Error::format("dictionary entry {} is damaged", key);
  }
  if (headers_.size() >= kHeadersCached) headers_.clear();
  auto [it, added] = headers_.emplace(key, Header{*ts, *length, std::move(*host)});
  return &it->second;
}

Result<const CgroupSample*> CompactDecoder::cgroup_names(std::uint64_t key) {
  if (auto it = cgroups_.find(key); it != cgroups_.end()) return &it->second;
  auto entry = lookup_(key);
  if (!entry) return entry.error();
  if (!*entry) return Error::format("cgroup key {} has no dictionary entry", key);
  Reader in(**entry);
  auto tag = in.tag();
  if (!tag || *tag != 'g') return Error::format("dictionary entry {} is not a cgroup's names", key);
  CgroupSample c;
  auto path = in.text();
  if (!path) return Error::format("dictionary entry {} is damaged", key);
  c.cgroup = std::move(*path);
  for (std::string* name : container_fields(c)) {
    auto text = in.text();
    if (!text) return Error::format("dictionary entry {} is damaged", key);
    *name = std::move(*text);
  }
  if (!in.done()) return Error::format("dictionary entry {} is damaged", key);
  if (cgroups_.size() >= kNamesCached) cgroups_.clear();
  auto [it, added] = cgroups_.emplace(key, std::move(c));
  return &it->second;
}

Result<Sample> CompactDecoder::decode_cgroup(std::string_view record) {
  Reader in(record.substr(1));
  std::array<std::uint64_t, 12> f{};
  TALLY_TRY(numbers(in, f));
  if (f[4] > 7) return Error::format("field 5: unknown bits {:#x}", f[4]);
  auto header_entry = header(f[0]);
  if (!header_entry) return header_entry.error();
  auto names_entry = cgroup_names(f[1]);
  if (!names_entry) return names_entry.error();
  CgroupSample s = **names_entry;
  const Header* h = *header_entry;
  s.ts_ns = h->ts_ns;
  s.interval_ns = h->interval_ns;
  s.host = h->host;
  s.processes = static_cast<std::uint32_t>(f[2]);
  s.process_cpu_ns = f[3];
  s.usage_known = (f[4] & 1u) != 0;
  s.throttling_known = (f[4] & 2u) != 0;
  s.pressure_known = (f[4] & 4u) != 0;
  s.cpu_ns = f[5];
  s.cpu_pct = percent(s.cpu_ns, s.interval_ns);
  s.nr_periods = f[6];
  s.nr_throttled = f[7];
  s.throttled_ns = f[8];
  s.psi_some_ns = f[9];
  s.psi_full_ns = f[10];
  s.limit_cpus = cpus_of_millionths(f[11]);
  return Sample(std::move(s));
}

Result<Sample> CompactDecoder::decode_record(std::string_view record) {
  if (!is_compact_record(record)) return parse_json_line(record);
  Reader in(record);
  auto read_tag = in.tag();
  if (!read_tag) return read_tag.error();
  const char tag = *read_tag;
  if (tag == 'c') return decode_cgroup(record);
  if (tag == 'h') {
    std::array<std::uint64_t, 10> f{};
    TALLY_TRY(numbers(in, f, 5));
    auto header_entry = header(f[0]);
    if (!header_entry) return header_entry.error();
    const Header* h = *header_entry;
    HostSample s;
    s.ts_ns = h->ts_ns;
    s.interval_ns = h->interval_ns;
    s.host = h->host;
    s.ncpu = static_cast<std::uint32_t>(f[1]);
    s.busy_ns = f[2];
    s.cpu_pct = host_percent(s.busy_ns, s.interval_ns, s.ncpu);
    s.processes = static_cast<std::uint32_t>(f[3]);
    s.dropped_updates = f[4];
    s.steal_ns = f[5];
    s.psi_some_ns = f[6];
    s.psi_full_ns = f[7];
    s.unaccounted_ns = varint::unzigzag(f[8]);
    s.bpf_run_ns = f[9];
    return Sample(std::move(s));
  }
  if (std::string_view("pxPX").find(tag) == std::string_view::npos) {
    return Error::format("unknown tag {:#04x}", tag);
  }
  const bool pages = tag == 'p' || tag == 'x';
  std::array<std::uint64_t, 5> f{};
  TALLY_TRY(numbers(in, f, 4));
  auto header_entry = header(f[0]);
  if (!header_entry) return header_entry.error();
  const Header* h = *header_entry;
  auto names_entry = names(f[1]);
  if (!names_entry) return names_entry.error();
  const Names* n = *names_entry;
  ProcessSample s;
  s.ts_ns = h->ts_ns;
  s.interval_ns = h->interval_ns;
  s.host = h->host;
  s.pid = n->pid;
  s.start_time_ns = n->start_time_ns;
  s.comm = n->comm;
  s.cmdline = n->cmdline;
  s.cgroup = n->cgroup;
  s.container_id = n->container_id;
  s.container_runtime = n->container_runtime;
  s.pod_uid = n->pod_uid;
  s.pod_qos = n->pod_qos;
  s.pod = n->pod;
  s.pod_namespace = n->pod_namespace;
  s.container = n->container;
  s.cpu_ns = f[2];
  s.cpu_pct = percent(s.cpu_ns, s.interval_ns);
  s.wait_ns = f[4];
  s.wait_pct = percent(s.wait_ns, s.interval_ns);
  s.rss_bytes = pages ? f[3] * kPage : f[3];
  s.exited = tag == 'x' || tag == 'X';
  // No later batch names an exited process; a resend of this one looks its
  // names up again.
  if (s.exited) names_.erase(f[1]);
  return Sample(std::move(s));
}

Result<std::vector<Sample>> CompactDecoder::decode(std::span<const std::string_view> records) {
  std::vector<Sample> out;
  out.reserve(records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    auto sample = decode_record(records[i]);
    if (!sample) return sample.error().context(fmt::format("compact record {}", i));
    out.push_back(std::move(*sample));
  }
  return out;
}

}  // namespace tally::samples
