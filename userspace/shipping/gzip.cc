#include "gzip.h"

#include <zlib.h>

namespace tally::shipping {

Result<std::string> gzip_compress(std::string_view data, int level) {
  z_stream zs{};
  // windowBits 15 + 16 asks zlib for a gzip header and trailer instead of zlib's own.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return Error::format("gzip: deflateInit2 failed (level {})", level);
  }
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(data.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  const auto produced = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return Error::format("gzip: deflate failed ({})", rc);
  out.resize(produced);
  return out;
}

}  // namespace tally::shipping
