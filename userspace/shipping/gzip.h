// gzip (RFC 1952) compression of request bodies.
#pragma once

#include <string>
#include <string_view>

#include "tally/result.h"

namespace tally::shipping {

// level 0 (store) to 9 (smallest). Deterministic for a given zlib and level.
Result<std::string> gzip_compress(std::string_view data, int level);

}  // namespace tally::shipping
