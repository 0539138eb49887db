// The query strings of GET /v1/samples, /v1/top and /v1/series: percent-decoding
// and typed, range-checked parameters. Pure. Errors name the parameter:
//   "limit: must be 1 to 100000, got 0"
//   "bogus: unknown parameter (accepted: host, pid, from, to, limit)"
// An empty value ("host=") counts as not given, so URL templates with
// empty slots work.
#pragma once

#include <string_view>

#include "collector/query_store.h"
#include "tally/result.h"

namespace tally::collector {

inline constexpr std::uint64_t kDefaultSampleLimit = 1000;
inline constexpr std::uint64_t kMaxSampleLimit = 100000;
inline constexpr std::uint64_t kDefaultTopN = 10;
inline constexpr std::uint64_t kMaxTopN = 10000;

inline constexpr std::uint64_t kDefaultSeriesTop = 10;
inline constexpr std::uint64_t kMaxSeriesTop = 100;

// `query` is the part of the target after '?', possibly empty.
Result<SampleQuery> parse_sample_query(std::string_view query);
Result<TopQuery> parse_top_query(std::string_view query);

// GET /v1/series: host, group_by (host, comm, cgroup, process), from and
// to (ns; default the last hour before now_ns), step (seconds; default
// the step of about 300 points), top, format (json or csv).
struct SeriesRequest {
  SeriesQuery query;
  bool csv = false;
};
Result<SeriesRequest> parse_series_query(std::string_view query, std::uint64_t now_ns);

// "%41+b" -> "A b". Fails on a malformed escape.
Result<std::string> percent_decode(std::string_view s);

}  // namespace tally::collector
