// The query strings of GET /v1/samples and GET /v1/top: percent-decoding
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

// `query` is the part of the target after '?', possibly empty.
Result<SampleQuery> parse_sample_query(std::string_view query);
Result<TopQuery> parse_top_query(std::string_view query);

// "%41+b" -> "A b". Fails on a malformed escape.
Result<std::string> percent_decode(std::string_view s);

}  // namespace tally::collector
