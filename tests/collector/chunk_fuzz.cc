// libFuzzer target for sample chunks as read back from the database
// (sample_chunk.h): a damaged or hostile file must give an error, never a
// crash, a hang or an allocation beyond the chunk limit. A chunk that
// decodes is encoded again and must decode to the same samples.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "collector/sample_chunk.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view blob(reinterpret_cast<const char*>(data), size);
  auto samples = tally::collector::decode_chunk(blob);
  if (!samples.ok()) return 0;
  auto again = tally::collector::decode_chunk(tally::collector::encode_chunk(*samples));
  if (!again.ok() || *again != *samples) std::abort();
  return 0;
}
