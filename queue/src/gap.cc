#include "gap.h"

#include <algorithm>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

namespace tally::queue {

const char* gap_reason_name(GapReason reason) {
  switch (reason) {
    case GapReason::cap:
      return "cap";
    case GapReason::rejected:
      return "rejected";
    case GapReason::append_failed:
      return "append_failed";
    case GapReason::outbox_lost:
      return "outbox_lost";
  }
  return "unknown";
}

namespace {
std::optional<GapReason> parse_reason(std::string_view name) {
  for (int i = 0; i < kGapReasonCount; ++i) {
    const auto reason = static_cast<GapReason>(i);
    if (name == gap_reason_name(reason)) return reason;
  }
  return std::nullopt;
}
}  // namespace

GapRecord make_gap(GapReason reason, std::uint64_t first_seq, std::uint64_t last_seq,
                   std::uint64_t samples, std::string detail, std::uint64_t time_ns) {
  GapRecord gap;
  gap.reason = reason;
  gap.first_seq = first_seq;
  gap.last_seq = last_seq;
  gap.samples = samples;
  gap.detail = std::move(detail);
  gap.time_ns = time_ns;
  return gap;
}

std::string encode_gap(const GapRecord& gap) {
  // Ordered keys so the payload reads the same in every log and test.
  nlohmann::ordered_json j;
  j["kind"] = "gap";
  j["first_seq"] = gap.first_seq;
  j["last_seq"] = gap.last_seq;
  j["samples"] = gap.samples;
  j["reason"] = gap_reason_name(gap.reason);
  j["time_ns"] = gap.time_ns;
  j["detail"] = gap.detail;
  if (gap.http_status != 0) j["http_status"] = gap.http_status;
  if (gap.first_index) j["first_index"] = *gap.first_index;
  if (gap.predecessor) {
    j["predecessor"] = {{"agent_id", gap.predecessor->agent_id},
                        {"last_seq", gap.predecessor->last_seq}};
  }
  // replace: a server message may hold invalid UTF-8; it must not make the
  // gap record (and with it the whole append or reject) fail.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<GapRecord> decode_gap(std::string_view payload) {
  const auto j = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("kind", "") != "gap") return std::nullopt;
  const auto reason = parse_reason(j.value("reason", ""));
  if (!reason) return std::nullopt;
  GapRecord gap;
  gap.first_seq = j.value("first_seq", std::uint64_t{0});
  gap.last_seq = j.value("last_seq", std::uint64_t{0});
  gap.samples = j.value("samples", std::uint64_t{0});
  gap.reason = *reason;
  gap.time_ns = j.value("time_ns", std::uint64_t{0});
  gap.detail = j.value("detail", "");
  gap.http_status = j.value("http_status", std::uint32_t{0});
  if (j.contains("first_index") && j["first_index"].is_number_unsigned()) {
    gap.first_index = j["first_index"].get<std::uint32_t>();
  }
  if (const auto p = j.find("predecessor"); p != j.end() && p->is_object()) {
    gap.predecessor =
        GapPredecessor{p->value("agent_id", ""), p->value("last_seq", std::uint64_t{0})};
  }
  return gap;
}

std::vector<PlannedGap> plan_gaps(std::span<const EvictedBatch> evicted) {
  // Runs per sink, in seq order.
  std::map<std::int64_t, std::vector<PlannedGap>> runs;
  for (const EvictedBatch& batch : evicted) {
    for (const std::int64_t sink : batch.sink_ids) {
      auto& sink_runs = runs[sink];
      if (!sink_runs.empty() && sink_runs.back().last_seq + 1 == batch.seq) {
        sink_runs.back().last_seq = batch.seq;
        sink_runs.back().samples += batch.samples;
      } else {
        sink_runs.push_back({batch.seq, batch.seq, batch.samples, {}});
      }
    }
  }
  // Merge identical runs of different sinks into one record.
  std::map<std::tuple<std::uint64_t, std::uint64_t, std::uint64_t>, PlannedGap> merged;
  for (const auto& [sink, sink_runs] : runs) {
    for (const PlannedGap& run : sink_runs) {
      auto& gap = merged[{run.first_seq, run.last_seq, run.samples}];
      gap.first_seq = run.first_seq;
      gap.last_seq = run.last_seq;
      gap.samples = run.samples;
      gap.sink_ids.push_back(sink);
    }
  }
  std::vector<PlannedGap> gaps;
  gaps.reserve(merged.size());
  for (auto& [key, gap] : merged) gaps.push_back(std::move(gap));
  return gaps;
}

}  // namespace tally::queue
