#include "native_format.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace tally::shipping {

NativeFormat::NativeFormat(std::string agent_id, std::string host) {
  const auto replace = nlohmann::json::error_handler_t::replace;
  envelope_head_ = fmt::format(R"({{"version":1,"agent_id":{},"host":{},)",
                               nlohmann::json(agent_id).dump(-1, ' ', false, replace),
                               nlohmann::json(host).dump(-1, ' ', false, replace));
}

Result<std::string> NativeFormat::encode(const queue::Batch& batch,
                                         std::span<const std::string_view> lines,
                                         std::uint32_t first, std::uint32_t count) const {
  std::string body = envelope_head_;
  if (batch.kind == queue::Batch::Kind::gap) {
    if (!batch.gap) return Error::format("encode gap batch {}: no gap record", batch.seq);
    const queue::GapRecord& g = *batch.gap;
    nlohmann::ordered_json gap;
    gap["first_seq"] = g.first_seq;
    gap["last_seq"] = g.last_seq;
    gap["samples"] = g.samples;
    gap["reason"] = queue::gap_reason_name(g.reason);
    gap["time_ns"] = g.time_ns;
    gap["detail"] = g.detail;
    if (g.http_status) gap["http_status"] = g.http_status;
    if (g.first_index) gap["first_index"] = *g.first_index;
    fmt::format_to(std::back_inserter(body), R"("seq":{},"kind":"gap","gap":{}}})", batch.seq,
                   gap.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return body;
  }
  if (static_cast<std::size_t>(first) + count > lines.size()) {
    return Error::format("encode batch {}: piece {}+{} outside its {} samples", batch.seq, first,
                         count, lines.size());
  }
  std::size_t size = body.size() + 128;
  for (std::uint32_t i = 0; i < count; ++i) size += lines[first + i].size() + 1;
  body.reserve(size);
  fmt::format_to(std::back_inserter(body),
                 R"("seq":{},"kind":"samples","first_index":{},"batch_samples":{},"samples":[)",
                 batch.seq, first, lines.size());
  // The lines are JSON objects written by tallyd itself; they are spliced in
  // as they are so the bytes sent are the bytes committed.
  for (std::uint32_t i = 0; i < count; ++i) {
    if (i) body += ',';
    body += lines[first + i];
  }
  body += "]}";
  return body;
}

}  // namespace tally::shipping
