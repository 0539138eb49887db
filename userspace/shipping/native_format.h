// tally-collector's protocol (docs/protocol.md): the sample lines exactly as
// committed, in a JSON envelope that names the agent, the batch and the piece.
#pragma once

#include <string>

#include "sink_format.h"

namespace tally::shipping {

class NativeFormat final : public SinkFormat {
 public:
  NativeFormat(std::string agent_id, std::string host);

  std::string_view name() const override { return "native"; }
  std::string_view content_type() const override { return "application/json"; }
  Result<std::string> encode(const queue::Batch& batch, std::span<const std::string_view> lines,
                             std::uint32_t first, std::uint32_t count) const override;

 private:
  std::string envelope_head_;  // {"version":1,"agent_id":"…","host":"…",
};

}  // namespace tally::shipping
