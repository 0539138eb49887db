#include "blob_codec.h"

#include <zstd.h>

namespace tally::queue {

namespace {
constexpr int kLevel = 1;
}

BlobCodec::BlobCodec(bool compress)
    : compress_(compress),
      cctx_(compress ? ZSTD_createCCtx() : nullptr),
      dctx_(ZSTD_createDCtx()) {}

BlobCodec::~BlobCodec() {
  ZSTD_freeCCtx(cctx_);
  ZSTD_freeDCtx(dctx_);
}

Result<PackedBlob> BlobCodec::pack(std::string_view data) {
  if (!compress_) return PackedBlob{std::string(data), Codec::none};
  if (cctx_ == nullptr) return Error("zstd: no compression context (out of memory)");
  std::string out;
  out.resize(ZSTD_compressBound(data.size()));
  const std::size_t n =
      ZSTD_compressCCtx(cctx_, out.data(), out.size(), data.data(), data.size(), kLevel);
  if (ZSTD_isError(n)) return Error::format("zstd: compress: {}", ZSTD_getErrorName(n));
  out.resize(n);
  return PackedBlob{std::move(out), Codec::zstd};
}

Result<std::string> BlobCodec::unpack(std::string_view blob, Codec codec, std::uint64_t size) {
  if (codec == Codec::none) return std::string(blob);
  if (codec != Codec::zstd) return Error::format("unknown codec {}", static_cast<int>(codec));
  if (dctx_ == nullptr) return Error("zstd: no decompression context (out of memory)");
  const unsigned long long framed = ZSTD_getFrameContentSize(blob.data(), blob.size());
  if (framed != size) {
    return Error::format("zstd: stored frame holds {} bytes, the row says {}", framed, size);
  }
  std::string out;
  out.resize(size);
  const std::size_t n =
      ZSTD_decompressDCtx(dctx_, out.data(), out.size(), blob.data(), blob.size());
  if (ZSTD_isError(n) || n != size) {
    return Error::format("zstd: decompress: {}", ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short");
  }
  return out;
}

}  // namespace tally::queue
