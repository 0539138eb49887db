// gzip (RFC 1952) compression of request bodies, with libdeflate: at level
// 6 it measured 1.8x faster than zlib on a 220 KB batch body, and 9 %
// smaller (docs/BENCHMARKS.md, "What was optimised"); a backlog's drain is
// bound by this compression on the agent's side.
#pragma once

#include <string>
#include <string_view>

#include "tally/result.h"

namespace tally::shipping {

// level 0 (store) to 9 (higher: smaller, slower; libdeflate goes to 12).
// Deterministic for a given libdeflate and level.
Result<std::string> gzip_compress(std::string_view data, int level);

}  // namespace tally::shipping
