#include "collector/sample_chunk.h"

#include <zstd.h>

#include <algorithm>
#include <array>
#include <limits>

#include "collector/json_text.h"
#include "samples/json_line.h"
#include "samples/sample.h"
#include "tally/varint.h"

namespace tally::collector {

namespace {

// Format 3 added tag bit 7 and the values it brings, format 4 bit 8;
// format 2 chunks (no bit 7) are read as they are.
constexpr std::uint8_t kFormat = 4;
constexpr std::uint8_t kOldestFormat = 2;
constexpr std::uint8_t kRaw = 0;
constexpr std::uint8_t kZstd = 1;
constexpr int kZstdLevel = 3;
// A chunk holds one request's samples; its text is bounded by the decoded
// body limit. A damaged frame claiming more is refused before allocating.
constexpr std::uint64_t kMaxChunkBytes = 256ull << 20;
constexpr std::uint64_t kPage = 4096;

enum Tag : std::uint64_t {
  kHost = 1u << 0,
  kExited = 1u << 1,
  kNamesAtEnd = 1u << 2,
  kNewTs = 1u << 3,
  kNewInterval = 1u << 4,
  kRssBytes = 1u << 5,
  kVerbatim = 1u << 6,
  // The sample has this release's fields (samples::Form::current): a
  // process's wait_ns follows its cpu_ns, a host's steal, pressure,
  // unaccounted (zigzag) and BPF run time follow dropped_updates.
  kExtended = 1u << 7,
  // A cgroup line (format 4): with kHost and kVerbatim, no host fields.
  kCgroup = 1u << 8,
  kAllTags = (1u << 9) - 1,
};

// One stream per kind of value, so that each holds numbers alike (the tags
// and name deltas of an interval are nearly all the same) for zstd to find.
enum Stream { kTags, kTimes, kNames, kCpu, kRss, kHostFields, kVerbatimText, kStreams };

// What the previous sample left for the next one's deltas.
struct Context {
  std::uint64_t ts_ns = 0;
  std::uint64_t interval_ns = 0;
  std::int64_t names_id = 0;
  bool first = true;
};

std::uint64_t tag_of(const ChunkSample& s, const Context& c) {
  std::uint64_t tag = 0;
  if (!s.is_process) tag |= kHost;
  if (s.is_cgroup) tag |= kCgroup;
  if (s.is_process && s.exited) tag |= kExited;
  if (s.is_process && s.names_at_end) tag |= kNamesAtEnd;
  if (c.first || s.ts_ns != c.ts_ns) tag |= kNewTs;
  if (c.first || s.interval_ns != c.interval_ns) tag |= kNewInterval;
  if (s.is_process && s.rss_bytes % kPage != 0) tag |= kRssBytes;
  if (s.verbatim) tag |= kVerbatim;
  if (s.extended) tag |= kExtended;
  return tag;
}

void encode_sample(std::array<std::string, kStreams>& out, const ChunkSample& s, Context& c) {
  const std::uint64_t tag = tag_of(s, c);
  varint::append(out[kTags], tag);
  if (tag & kNewTs) {
    varint::append(out[kTimes], c.first
                                    ? s.ts_ns
                                    : varint::zigzag(static_cast<std::int64_t>(s.ts_ns - c.ts_ns)));
  }
  if (tag & kNewInterval) varint::append(out[kTimes], s.interval_ns);
  if (s.is_process) {
    varint::append(out[kNames], varint::zigzag(s.names_id - c.names_id));
    c.names_id = s.names_id;
    varint::append(out[kCpu], s.cpu_ns);
    if (tag & kExtended) varint::append(out[kCpu], s.wait_ns);
    varint::append(out[kRss], (tag & kRssBytes) ? s.rss_bytes : s.rss_bytes / kPage);
  } else if (!s.is_cgroup) {
    varint::append(out[kHostFields], s.ncpu);
    varint::append(out[kHostFields], s.busy_ns);
    varint::append(out[kHostFields], s.processes);
    varint::append(out[kHostFields], s.dropped_updates);
    if (tag & kExtended) {
      for (const std::uint64_t v : {s.steal_ns, s.psi_some_ns, s.psi_full_ns,
                                    varint::zigzag(s.unaccounted_ns), s.bpf_run_ns}) {
        varint::append(out[kHostFields], v);
      }
    }
  }
  if (tag & kVerbatim) {
    varint::append(out[kVerbatimText], s.names_at);
    varint::append(out[kVerbatimText], s.verbatim->size());
    out[kVerbatimText] += *s.verbatim;
  }
  c.ts_ns = s.ts_ns;
  c.interval_ns = s.interval_ns;
  c.first = false;
}

using Readers = std::array<varint::Reader, kStreams>;

std::optional<std::uint32_t> u32(std::optional<std::uint64_t> v) {
  if (!v || *v > std::numeric_limits<std::uint32_t>::max()) return std::nullopt;
  return static_cast<std::uint32_t>(*v);
}

// A process sample's values (decode_sample); false: damaged.
bool read_process_fields(Readers& in, Context& c, std::uint64_t tag, ChunkSample& s) {
  s.exited = (tag & kExited) != 0;
  s.names_at_end = (tag & kNamesAtEnd) != 0;
  auto delta = in[kNames].next();
  auto cpu = in[kCpu].next();
  auto rss = in[kRss].next();
  if (!delta || !cpu || !rss) return false;
  // Unsigned: a damaged delta wraps instead of overflowing.
  s.names_id = static_cast<std::int64_t>(static_cast<std::uint64_t>(c.names_id) +
                                         static_cast<std::uint64_t>(varint::unzigzag(*delta)));
  if (s.names_id <= 0) return false;
  c.names_id = s.names_id;
  s.cpu_ns = *cpu;
  if (s.extended) {
    auto wait = in[kCpu].next();
    if (!wait) return false;
    s.wait_ns = *wait;
  }
  if (!(tag & kRssBytes) && *rss > std::numeric_limits<std::uint64_t>::max() / kPage) {
    return false;
  }
  s.rss_bytes = (tag & kRssBytes) ? *rss : *rss * kPage;
  return true;
}

// A host sample's values (decode_sample); false: damaged.
bool read_host_fields(Readers& in, std::uint64_t tag, ChunkSample& s) {
  if (tag & (kExited | kNamesAtEnd | kRssBytes)) return false;
  auto ncpu = u32(in[kHostFields].next());
  auto busy = in[kHostFields].next();
  auto processes = u32(in[kHostFields].next());
  auto dropped = in[kHostFields].next();
  if (!ncpu || !busy || !processes || !dropped) return false;
  s.ncpu = *ncpu;
  s.busy_ns = *busy;
  s.processes = *processes;
  s.dropped_updates = *dropped;
  if (!s.extended) return true;
  std::array<std::uint64_t, 5> more{};
  for (auto& v : more) {
    auto read = in[kHostFields].next();
    if (!read) return false;
    v = *read;
  }
  s.steal_ns = more[0];
  s.psi_some_ns = more[1];
  s.psi_full_ns = more[2];
  s.unaccounted_ns = varint::unzigzag(more[3]);
  s.bpf_run_ns = more[4];
  return true;
}

// Reads one sample; nullopt when a stream ends early or holds a value that
// no encoder writes.
std::optional<ChunkSample> decode_sample(Readers& in, Context& c, std::uint8_t format) {
  auto tag = in[kTags].next();
  if (!tag || (*tag & ~std::uint64_t{kAllTags}) != 0) return std::nullopt;
  if (format < 3 && (*tag & kExtended)) return std::nullopt;
  if ((*tag & kCgroup) && (format < 4 || !(*tag & kHost) || !(*tag & kVerbatim))) {
    return std::nullopt;
  }
  if (c.first && (*tag & (kNewTs | kNewInterval)) != (kNewTs | kNewInterval)) return std::nullopt;
  ChunkSample s;
  s.is_process = (*tag & kHost) == 0;
  s.is_cgroup = (*tag & kCgroup) != 0;
  s.extended = (*tag & kExtended) != 0;
  s.ts_ns = c.ts_ns;
  s.interval_ns = c.interval_ns;
  if (*tag & kNewTs) {
    auto v = in[kTimes].next();
    if (!v) return std::nullopt;
    s.ts_ns = c.first ? *v : c.ts_ns + static_cast<std::uint64_t>(varint::unzigzag(*v));
  }
  if (*tag & kNewInterval) {
    auto v = in[kTimes].next();
    if (!v) return std::nullopt;
    s.interval_ns = *v;
  }
  const bool fields_read = s.is_process  ? read_process_fields(in, c, *tag, s)
                           : s.is_cgroup ? (*tag & (kExited | kNamesAtEnd | kRssBytes)) == 0
                                         : read_host_fields(in, *tag, s);
  if (!fields_read) return std::nullopt;
  if (*tag & kVerbatim) {
    auto at = in[kVerbatimText].next();
    auto size = in[kVerbatimText].next();
    if (!at || !size) return std::nullopt;
    auto text = in[kVerbatimText].bytes(*size);
    if (!text || *at > text->size()) return std::nullopt;
    s.names_at = *at;
    s.verbatim = std::string(*text);
  }
  c.ts_ns = s.ts_ns;
  c.interval_ns = s.interval_ns;
  c.first = false;
  return s;
}

Result<std::string> inflate(std::string_view frame) {
  const unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    return Error("sample chunk: not a zstd frame of known size");
  }
  if (size > kMaxChunkBytes) return Error::format("sample chunk: claims {} bytes", size);
  std::string out(size, '\0');
  const std::size_t n = ZSTD_decompress(out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n) || n != size) {
    return Error::format("sample chunk: zstd: {}",
                         ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short");
  }
  return out;
}

}  // namespace

namespace {

// The sample's fields as a chunk holds them, without its text.
ChunkSample fields_of(const StoredSample& s, std::int64_t names_id) {
  ChunkSample c;
  c.is_process = s.pid.has_value();
  c.is_cgroup = s.is_cgroup;
  c.ts_ns = s.ts_ns;
  c.interval_ns = s.interval_ns;
  if (c.is_process) {
    c.names_id = names_id;
    c.cpu_ns = *s.cpu_ns;
    c.rss_bytes = s.rss_bytes;
    c.exited = s.exited;
    c.names_at_end = s.names.empty();
    c.wait_ns = s.wait_ns;
  } else {
    c.ncpu = s.ncpu;
    c.busy_ns = s.busy_ns;
    c.processes = s.processes;
    c.dropped_updates = s.dropped_updates;
    c.steal_ns = s.steal_ns;
    c.psi_some_ns = s.psi_some_ns;
    c.psi_full_ns = s.psi_full_ns;
    c.unaccounted_ns = s.unaccounted_ns;
    c.bpf_run_ns = s.bpf_run_ns;
  }
  c.extended = s.extended;
  return c;
}

}  // namespace

ChunkSample to_chunk_sample(const StoredSample& s, std::int64_t names_id) {
  ChunkSample c = fields_of(s, names_id);
  if (!s.canonical) {
    c.verbatim = s.json;
    c.names_at = s.names_at;
  }
  return c;
}

std::string encode_chunk(std::span<const ChunkSample> samples) {
  std::array<std::string, kStreams> streams;
  Context c;
  for (const ChunkSample& s : samples) encode_sample(streams, s, c);
  std::string body;
  varint::append(body, samples.size());
  for (const std::string& stream : streams) {
    varint::append(body, stream.size());
    body += stream;
  }
  std::string out;
  out.resize(2 + ZSTD_compressBound(body.size()));
  const std::size_t n =
      ZSTD_compress(out.data() + 2, out.size() - 2, body.data(), body.size(), kZstdLevel);
  if (ZSTD_isError(n) || n >= body.size()) {
    // Too small to gain (or zstd could not): kept as it is.
    out.assign({static_cast<char>(kFormat), static_cast<char>(kRaw)});
    out += body;
    return out;
  }
  out.resize(2 + n);
  out[0] = static_cast<char>(kFormat);
  out[1] = static_cast<char>(kZstd);
  return out;
}

Result<std::vector<ChunkSample>> decode_chunk(std::string_view blob) {
  const std::uint8_t format = blob.empty() ? 0 : static_cast<std::uint8_t>(blob[0]);
  if (blob.size() < 2 || format < kOldestFormat || format > kFormat) {
    return Error::format("sample chunk: unknown format {} (this collector reads {} to {})",
                         blob.empty() ? -1 : static_cast<int>(format), kOldestFormat, kFormat);
  }
  std::string inflated;
  std::string_view body = blob.substr(2);
  if (static_cast<std::uint8_t>(blob[1]) == kZstd) {
    auto out = inflate(body);
    if (!out.ok()) return out.error();
    inflated = std::move(out).value();
    body = inflated;
  } else if (static_cast<std::uint8_t>(blob[1]) != kRaw) {
    return Error::format("sample chunk: unknown coding {}", static_cast<int>(blob[1]));
  }
  varint::Reader head(body);
  auto count = head.next();
  // Each sample takes at least a tag byte: a bound on the count before reserving.
  if (!count || *count > body.size()) return Error("sample chunk: bad sample count");
  Readers streams{varint::Reader({}), varint::Reader({}), varint::Reader({}), varint::Reader({}),
                  varint::Reader({}), varint::Reader({}), varint::Reader({})};
  for (auto& stream : streams) {
    auto size = head.next();
    auto bytes = size ? head.bytes(*size) : std::nullopt;
    if (!bytes) return Error("sample chunk: a stream is cut short");
    stream = varint::Reader(*bytes);
  }
  if (!head.at_end()) return Error("sample chunk: bytes after the last stream");
  std::vector<ChunkSample> out;
  out.reserve(*count);
  Context c;
  for (std::uint64_t i = 0; i < *count; ++i) {
    auto s = decode_sample(streams, c, format);
    if (!s) return Error::format("sample chunk: sample {} of {} is damaged", i, *count);
    out.push_back(std::move(*s));
  }
  for (const auto& stream : streams) {
    if (!stream.at_end()) return Error::format("sample chunk: values after sample {}", *count);
  }
  return out;
}

namespace {

samples::Form form_of(const ChunkSample& s) {
  return s.extended ? samples::Form::current : samples::Form::first_release;
}

// What tallyd writes for these fields: a process's line without its names.
std::string canonical_json(const ChunkSample& s, std::string_view host, std::uint32_t pid,
                           std::uint64_t start_time_ns) {
  if (!s.is_process) {
    samples::HostSample h;
    h.ts_ns = s.ts_ns;
    h.interval_ns = s.interval_ns;
    h.host = host;
    h.ncpu = s.ncpu;
    h.busy_ns = s.busy_ns;
    h.cpu_pct = samples::host_percent(h.busy_ns, h.interval_ns, h.ncpu);
    h.processes = s.processes;
    h.dropped_updates = s.dropped_updates;
    h.steal_ns = s.steal_ns;
    h.psi_some_ns = s.psi_some_ns;
    h.psi_full_ns = s.psi_full_ns;
    h.unaccounted_ns = s.unaccounted_ns;
    h.bpf_run_ns = s.bpf_run_ns;
    return samples::to_json_line(h, form_of(s));
  }
  samples::ProcessSample p;
  p.ts_ns = s.ts_ns;
  p.interval_ns = s.interval_ns;
  p.host = host;
  p.pid = pid;
  p.start_time_ns = start_time_ns;
  p.cpu_ns = s.cpu_ns;
  p.cpu_pct = samples::percent(p.cpu_ns, p.interval_ns);
  p.rss_bytes = s.rss_bytes;
  p.exited = s.exited;
  p.wait_ns = s.wait_ns;
  p.wait_pct = samples::percent(p.wait_ns, p.interval_ns);
  return samples::to_json_line(p, samples::Names::left_out, form_of(s));
}

// Where tallyd writes a process's names in a line without them.
std::size_t names_position(const std::string& line) { return line.find(",\"cpu_ns\":"); }

}  // namespace

bool is_canonical(const StoredSample& s) {
  const ChunkSample c = fields_of(s, 0);
  const std::string line =
      canonical_json(c, s.host, s.pid.value_or(0), s.start_time_ns.value_or(0));
  if (line != s.json) return false;
  if (!s.pid) return true;
  // The names stood where tallyd writes them, or were left out.
  return s.names_at == names_position(line) || (s.names.empty() && s.names_at == line.size() - 1);
}

std::string sample_json(const ChunkSample& s, std::string_view host, const ProcessNames* names) {
  const std::string_view names_text = names != nullptr ? std::string_view(names->names) : "";
  if (s.verbatim) return with_names(*s.verbatim, s.names_at, names_text);
  std::string line = canonical_json(s, host, names != nullptr ? names->pid : 0,
                                    names != nullptr ? names->start_time_ns : 0);
  if (!s.is_process) return line;
  // Where tallyd writes the names, or at the end where they were left out.
  const std::size_t at = s.names_at_end ? line.size() - 1 : names_position(line);
  return with_names(line, at, names_text);
}

ChunkSpan chunk_span(std::span<const ChunkSample> samples) {
  ChunkSpan span{std::numeric_limits<std::uint64_t>::max(), 0};
  for (const ChunkSample& s : samples) {
    span.min_ts_ns = std::min(span.min_ts_ns, s.ts_ns);
    span.max_ts_ns = std::max(span.max_ts_ns, s.ts_ns);
  }
  if (samples.empty()) span.min_ts_ns = 0;
  return span;
}

}  // namespace tally::collector
