// Compression of the payloads the outbox stores (batches.payload and
// staged.records), behind the `codec` column of their rows.
//
// Why: an interval of 1,000 samples is ~400 KB of JSON lines, and an
// append's cost is bytes - copied into SQLite pages, checksummed into the
// WAL, written and fsynced. zstd at level 1 shrinks those lines ~12x for
// ~1 ms of CPU, which measured cheaper than writing them
// (docs/BENCHMARKS.md, row 5). Level 1: higher levels cost more CPU than the
// bytes they save on this path.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "tally/result.h"

struct ZSTD_CCtx_s;
struct ZSTD_DCtx_s;

namespace tally::queue {

// Values of the codec column. Rows written before schema 2 are `none`.
enum class Codec : int { none = 0, zstd = 1 };

// A payload as it is stored, and how.
struct PackedBlob {
  std::string bytes;
  Codec codec = Codec::none;
};

// Holds zstd's contexts so they are allocated once per outbox, not per call.
// Not thread-safe: used under the outbox's mutex.
class BlobCodec {
 public:
  // compress false: payloads are stored as they are (OutboxOptions::compress).
  explicit BlobCodec(bool compress = true);
  ~BlobCodec();
  BlobCodec(const BlobCodec&) = delete;
  BlobCodec& operator=(const BlobCodec&) = delete;

  // `data` as a single zstd frame, or as it is when compression is off.
  Result<PackedBlob> pack(std::string_view data);
  // The bytes of a stored blob; `size` is the row's logical size (its bytes
  // column), checked against the frame so a damaged row is an error, not a
  // short batch.
  Result<std::string> unpack(std::string_view blob, Codec codec, std::uint64_t size);

 private:
  bool compress_;
  ZSTD_CCtx_s* cctx_;
  ZSTD_DCtx_s* dctx_;
};

}  // namespace tally::queue
