#include "compact_records.h"

#include <algorithm>

#include <fmt/format.h>

namespace tally::bench {
namespace {

using accounting::HostSample;
using accounting::ProcessSample;

void put(std::string& out, std::uint64_t v) {
  while (v >= 0x40) {
    out.push_back(static_cast<char>(0x80 | (v & 0x3f)));
    v >>= 6;
  }
  out.push_back(static_cast<char>(0x40 | v));
}

// Strings are stored as their length and their bytes; only entries hold
// them, and entries are not outbox records, so any byte may appear.
void put(std::string& out, std::string_view s) {
  put(out, static_cast<std::uint64_t>(s.size()));
  out.append(s);
}

// RSS is nearly always whole pages: then it costs the page count.
std::uint64_t pack_rss(std::uint64_t bytes) {
  return bytes % 4096 == 0 ? (bytes / 4096) << 1 : (bytes << 1) | 1;
}
std::uint64_t unpack_rss(std::uint64_t v) { return v & 1 ? v >> 1 : (v >> 1) * 4096; }

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool done() const { return pos_ == in_.size(); }
  Result<char> tag() {
    if (done()) return Error("compact: record ends before its tag");
    return in_[pos_++];
  }
  Result<std::uint64_t> number() {
    std::uint64_t v = 0;
    for (int shift = 0; pos_ < in_.size() && shift < 66; shift += 6) {
      const auto b = static_cast<unsigned char>(in_[pos_++]);
      if ((b & 0xc0) == 0x40) return v | (static_cast<std::uint64_t>(b & 0x3f) << shift);
      if ((b & 0xc0) != 0x80) return Error::format("compact: byte {:#x} is not a number", b);
      v |= static_cast<std::uint64_t>(b & 0x3f) << shift;
    }
    return Error("compact: number runs past the end of the record");
  }
  Result<std::string> text() {
    auto n = number();
    if (!n) return n.error();
    if (*n > in_.size() - pos_) return Error("compact: string runs past the end of the entry");
    std::string s(in_.substr(pos_, *n));
    pos_ += *n;
    return s;
  }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
};

}  // namespace

CompactInterval CompactEncoder::encode(const accounting::IntervalSamples& interval) {
  CompactInterval out;
  const HostSample& host = interval.host;
  const std::uint64_t interval_id = next_interval_++;
  std::string header = "i";
  put(header, interval_id);
  put(header, host.ts_ns);
  put(header, host.interval_ns);
  put(header, host.host);
  out.entries.push_back(std::move(header));

  out.records.reserve(interval.processes.size() + 1);
  for (const ProcessSample& s : interval.processes) {
    Known& known = known_[{s.pid, s.start_time_ns}];
    if (known.key == 0 || known.comm != s.comm || known.cmdline != s.cmdline ||
        known.cgroup != s.cgroup) {
      // New, or names changed by an exec: a new key, so batches already
      // stored keep meaning the names they were committed with.
      known = Known{next_key_++, s.comm, s.cmdline, s.cgroup};
      std::string entry = "n";
      put(entry, known.key);
      put(entry, s.pid);
      put(entry, s.start_time_ns);
      put(entry, s.comm);
      put(entry, s.cmdline);
      put(entry, s.cgroup);
      out.entries.push_back(std::move(entry));
    }
    std::string record = s.exited ? "x" : "p";
    put(record, interval_id);
    put(record, known.key);
    put(record, s.cpu_ns);
    put(record, pack_rss(s.rss_bytes));
    out.records.push_back(std::move(record));
    if (s.exited) known_.erase({s.pid, s.start_time_ns});
  }
  std::string record = "h";
  put(record, interval_id);
  put(record, host.ncpu);
  put(record, host.busy_ns);
  put(record, host.processes);
  put(record, host.dropped_updates);
  out.records.push_back(std::move(record));
  return out;
}

Status CompactDecoder::learn(std::string_view entry) {
  Reader in(entry);
  auto tag = in.tag();
  if (!tag) return tag.error();
  auto id = in.number();
  if (!id) return id.error();
  if (*tag == 'i') {
    auto ts = in.number();
    auto len = in.number();
    auto host = in.text();
    if (!ts || !len || !host) return Error("compact: short interval entry");
    headers_[*id] = Header{*ts, *len, std::move(*host)};
    return ok_status();
  }
  if (*tag != 'n') return Error::format("compact: unknown entry tag '{}'", *tag);
  auto pid = in.number();
  auto start = in.number();
  auto comm = in.text();
  auto cmdline = in.text();
  auto cgroup = in.text();
  if (!pid || !start || !comm || !cmdline || !cgroup) return Error("compact: short names entry");
  names_[*id] = Names{static_cast<std::uint32_t>(*pid), *start, std::move(*comm),
                      std::move(*cmdline), std::move(*cgroup)};
  return ok_status();
}

Result<accounting::IntervalSamples> CompactDecoder::decode(const CompactInterval& interval) {
  for (const std::string& entry : interval.entries) {
    if (auto learned = learn(entry); !learned) return learned.error();
  }
  accounting::IntervalSamples out;
  for (const std::string& record : interval.records) {
    Reader in(record);
    auto tag = in.tag();
    auto id = in.number();
    if (!tag || !id) return Error("compact: short record");
    const auto header = headers_.find(*id);
    if (header == headers_.end()) return Error::format("compact: unknown interval {}", *id);
    const Header& h = header->second;
    if (*tag == 'h') {
      HostSample s;
      s.ts_ns = h.ts_ns;
      s.interval_ns = h.interval_ns;
      s.host = h.host;
      auto ncpu = in.number();
      auto busy = in.number();
      auto processes = in.number();
      auto dropped = in.number();
      if (!ncpu || !busy || !processes || !dropped) return Error("compact: short host record");
      s.ncpu = static_cast<std::uint32_t>(*ncpu);
      s.busy_ns = *busy;
      s.cpu_pct = accounting::percent(s.busy_ns, s.interval_ns * std::max<std::uint32_t>(s.ncpu, 1));
      s.processes = static_cast<std::uint32_t>(*processes);
      s.dropped_updates = *dropped;
      out.host = std::move(s);
      continue;
    }
    if (*tag != 'p' && *tag != 'x') return Error::format("compact: unknown record tag '{}'", *tag);
    auto key = in.number();
    auto cpu = in.number();
    auto rss = in.number();
    if (!key || !cpu || !rss) return Error("compact: short process record");
    const auto names = names_.find(*key);
    if (names == names_.end()) return Error::format("compact: unknown process key {}", *key);
    ProcessSample s;
    s.ts_ns = h.ts_ns;
    s.interval_ns = h.interval_ns;
    s.host = h.host;
    s.pid = names->second.pid;
    s.start_time_ns = names->second.start_time_ns;
    s.comm = names->second.comm;
    s.cmdline = names->second.cmdline;
    s.cgroup = names->second.cgroup;
    s.cpu_ns = *cpu;
    s.cpu_pct = accounting::percent(s.cpu_ns, s.interval_ns);
    s.rss_bytes = unpack_rss(*rss);
    s.exited = *tag == 'x';
    out.processes.push_back(std::move(s));
  }
  return out;
}

}  // namespace tally::bench
