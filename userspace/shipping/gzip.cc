#include "shipping/gzip.h"

#include <libdeflate.h>

#include <memory>

namespace tally::shipping {

namespace {

struct FreeCompressor {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};

}  // namespace

Result<std::string> gzip_compress(std::string_view data, int level) {
  // One compressor per call (a few hundred KB): a shipper compresses one
  // body at a time, at most once a minute in steady state, and the memory
  // goes back between intervals instead of staying resident per thread.
  std::unique_ptr<libdeflate_compressor, FreeCompressor> compressor(
      libdeflate_alloc_compressor(level));
  if (!compressor) return Error::format("gzip: cannot make a compressor for level {}", level);
  std::string out;
  out.resize(libdeflate_gzip_compress_bound(compressor.get(), data.size()));
  const std::size_t produced =
      libdeflate_gzip_compress(compressor.get(), data.data(), data.size(), out.data(), out.size());
  // Cannot happen with a buffer of the bound's size; kept as an error, not UB.
  if (produced == 0) return Error::format("gzip: {} bytes did not fit the bound", data.size());
  out.resize(produced);
  return out;
}

}  // namespace tally::shipping
