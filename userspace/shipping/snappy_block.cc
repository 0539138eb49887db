#include "shipping/snappy_block.h"

#include <snappy.h>

namespace tally::shipping {

std::string snappy_compress(std::string_view data) {
  std::string out;
  snappy::Compress(data.data(), data.size(), &out);
  return out;
}

Result<std::string> snappy_uncompress(std::string_view block, std::size_t max_bytes) {
  std::size_t length = 0;
  if (!snappy::GetUncompressedLength(block.data(), block.size(), &length)) {
    return Error("snappy block: no valid length header");
  }
  if (length > max_bytes) {
    return Error::format("snappy block: {} bytes uncompressed, more than {}", length, max_bytes);
  }
  std::string out;
  if (!snappy::Uncompress(block.data(), block.size(), &out)) {
    return Error("snappy block: corrupt");
  }
  return out;
}

}  // namespace tally::shipping
