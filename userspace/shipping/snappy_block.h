// Snappy block compression (not the framed format), as Prometheus remote
// write requires: "Content-Encoding: snappy" bodies are one raw block.
#pragma once

#include <string>
#include <string_view>

#include "tally/result.h"

namespace tally::shipping {

std::string snappy_compress(std::string_view data);
// Fails on a block that is not valid snappy or would pass max_bytes.
Result<std::string> snappy_uncompress(std::string_view block, std::size_t max_bytes);

}  // namespace tally::shipping
