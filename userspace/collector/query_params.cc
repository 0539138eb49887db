#include "collector/query_params.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <string>

#include <fmt/format.h>

#include "collector/json_field.h"
#include "collector/series_format.h"

namespace tally::collector {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Shown back in error messages: short and printable.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (s.size() > 40) out += "...";
  return out;
}

using Params = std::map<std::string, std::string, std::less<>>;

// Splits and decodes "a=1&b=2", rejecting names not in `accepted`.
Result<Params> parse_params(std::string_view query,
                            std::initializer_list<std::string_view> accepted) {
  Params params;
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query.remove_prefix(std::min(query.size(), pair.size() + 1));
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq));
    if (!name.ok()) return name.error().context("query");
    auto value = percent_decode(eq == pair.npos ? std::string_view() : pair.substr(eq + 1));
    if (!value.ok()) return value.error().context(*name);
    if (std::find(accepted.begin(), accepted.end(), *name) == accepted.end()) {
      return Error::format("{}: unknown parameter (accepted: {})", shown(*name),
                           fmt::join(accepted, ", "));
    }
    if (!params.emplace(*name, *value).second) return Error::format("{}: given twice", *name);
  }
  return params;
}

const std::string* get(const Params& p, std::string_view name) {
  auto it = p.find(name);
  if (it == p.end() || it->second.empty()) return nullptr;
  return &it->second;
}

Result<std::uint64_t> parse_uint(const Params& p, std::string_view name, std::uint64_t min,
                                 std::uint64_t max, std::uint64_t fallback) {
  const std::string* v = get(p, name);
  if (v == nullptr) return fallback;
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec == std::errc::invalid_argument || end != v->data() + v->size()) {
    return Error::format("{}: expected an unsigned integer, got \"{}\"", name, shown(*v));
  }
  if (ec == std::errc::result_out_of_range || n < min || n > max) {
    return Error::format("{}: must be {} to {}, got {}", name, min, max, shown(*v));
  }
  return n;
}

struct Window {
  std::uint64_t from;
  std::uint64_t to;
};

Result<Window> parse_window(const Params& p) {
  auto from = parse_uint(p, "from", 0, kMaxStoredInteger, 0);
  if (!from.ok()) return from.error();
  auto to = parse_uint(p, "to", 0, kMaxStoredInteger, kMaxStoredInteger);
  if (!to.ok()) return to.error();
  if (*from > *to) return Error::format("from: {} is after to {}", *from, *to);
  return Window{*from, *to};
}

Result<GroupKind> parse_group_kind(const Params& p, std::string_view name, GroupKind fallback) {
  const std::string* v = get(p, name);
  if (v == nullptr) return fallback;
  for (GroupKind k : {GroupKind::host, GroupKind::comm, GroupKind::cgroup, GroupKind::process}) {
    if (*v == group_kind_name(k)) return k;
  }
  return Error::format("{}: expected host, comm, cgroup or process, got \"{}\"", name, shown(*v));
}

// A step of about 300 points over the window, from steps people read
// easily, in whole minutes, so that rollups can serve them.
// No less than a minute: tallyd's default interval, so that a step
// without a sample is a gap, not an interval that ends in the next step.
std::uint64_t default_step_s(std::uint64_t window_ns) {
  constexpr std::uint64_t kSteps[] = {60,   120,  300,   600,   900,   1800,
                                      3600, 7200, 10800, 21600, 43200, 86400};
  const std::uint64_t wanted = window_ns / 300 / 1'000'000'000;
  for (std::uint64_t s : kSteps) {
    if (s >= wanted) return s;
  }
  return 86400;
}

}  // namespace

Result<SeriesRequest> parse_series_query(std::string_view query, std::uint64_t now_ns) {
  auto p =
      parse_params(query, {"host", "group_by", "from", "to", "step", "top", "format", "source"});
  if (!p.ok()) return p.error();
  SeriesRequest r;
  SeriesQuery& q = r.query;
  if (const std::string* host = get(*p, "host")) q.host = *host;
  auto by = parse_group_kind(*p, "group_by", GroupKind::host);
  if (!by.ok()) return by.error();
  q.group_by = *by;
  constexpr std::uint64_t kHourNs = 3600ull * 1'000'000'000;
  auto to = parse_uint(*p, "to", 1, kMaxStoredInteger, now_ns);
  if (!to.ok()) return to.error();
  auto from = parse_uint(*p, "from", 0, kMaxStoredInteger, *to - std::min(*to, kHourNs));
  if (!from.ok()) return from.error();
  if (*from >= *to) return Error::format("from: {} is not before to {}", *from, *to);
  q.from = *from;
  q.to = *to;
  auto step = parse_uint(*p, "step", 1, 366ull * 86400, default_step_s(q.to - q.from));
  if (!step.ok()) return step.error();
  q.step_ns = *step * 1'000'000'000;
  const std::uint64_t points = (q.to - q.from) / q.step_ns + 1;
  if (points > SeriesReader::kMaxPoints) {
    return Error::format("step: {} s makes {} points from {} to {}, at most {}", *step, points,
                         q.from, q.to, SeriesReader::kMaxPoints);
  }
  auto top = parse_uint(*p, "top", 1, kMaxSeriesTop, kDefaultSeriesTop);
  if (!top.ok()) return top.error();
  q.top = *top;
  if (const std::string* source = get(*p, "source")) {
    for (SeriesSource s : {SeriesSource::raw, SeriesSource::minute, SeriesSource::hour}) {
      if (*source == source_name(s)) q.source = s;
    }
    if (!q.source) {
      return Error::format("source: expected raw, rollup_1m or rollup_1h, got \"{}\"",
                           shown(*source));
    }
    if ((q.source == SeriesSource::minute && q.step_ns % 60'000'000'000 != 0) ||
        (q.source == SeriesSource::hour && q.step_ns % 3'600'000'000'000 != 0)) {
      return Error::format("step: {} s does not fit source {}", *step, *source);
    }
  }
  if (const std::string* format = get(*p, "format")) {
    if (*format != "json" && *format != "csv") {
      return Error::format("format: expected json or csv, got \"{}\"", shown(*format));
    }
    r.csv = *format == "csv";
  }
  return r;
}

Result<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+') {
      out.push_back(' ');  // application/x-www-form-urlencoded, as curl --data-urlencode sends
    } else if (c == '%') {
      int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
      int lo = i + 2 < s.size() ? hex_value(s[i + 2]) : -1;
      if (hi < 0 || lo < 0) return Error("invalid percent-encoding");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

Result<SampleQuery> parse_sample_query(std::string_view query) {
  auto p = parse_params(query, {"host", "pid", "from", "to", "limit"});
  if (!p.ok()) return p.error();
  SampleQuery q;
  if (const std::string* host = get(*p, "host")) q.host = *host;
  if (get(*p, "pid") != nullptr) {
    auto pid = parse_uint(*p, "pid", 0, 0xffffffffULL, 0);
    if (!pid.ok()) return pid.error();
    q.pid = static_cast<std::uint32_t>(*pid);
  }
  auto window = parse_window(*p);
  if (!window.ok()) return window.error();
  q.from = window->from;
  q.to = window->to;
  auto limit = parse_uint(*p, "limit", 1, kMaxSampleLimit, kDefaultSampleLimit);
  if (!limit.ok()) return limit.error();
  q.limit = *limit;
  return q;
}

Result<TopQuery> parse_top_query(std::string_view query) {
  auto p = parse_params(query, {"host", "from", "to", "n", "by"});
  if (!p.ok()) return p.error();
  TopQuery q;
  if (const std::string* host = get(*p, "host")) q.host = *host;
  auto window = parse_window(*p);
  if (!window.ok()) return window.error();
  q.from = window->from;
  q.to = window->to;
  q.window_given = get(*p, "from") != nullptr || get(*p, "to") != nullptr;
  auto by = parse_group_kind(*p, "by", GroupKind::process);
  if (!by.ok()) return by.error();
  q.by = *by;
  auto n = parse_uint(*p, "n", 1, kMaxTopN, kDefaultTopN);
  if (!n.ok()) return n.error();
  q.n = *n;
  return q;
}

}  // namespace tally::collector
