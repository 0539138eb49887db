#include "collector/api_json.h"

#include <nlohmann/json.hpp>

#include "collector/series_format.h"

namespace tally::collector {

namespace {

using ordered_json = nlohmann::ordered_json;

std::string dump(const ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ordered_json ranges(const std::vector<SeqRange>& rs) {
  ordered_json a = ordered_json::array();
  for (const SeqRange& r : rs) a.push_back({r.first, r.last});
  return a;
}

template <typename T>
ordered_json or_null(const std::optional<T>& v) {
  return v ? ordered_json(*v) : ordered_json(nullptr);
}

ordered_json link(const std::optional<AgentLink>& l) {
  if (!l) return nullptr;
  return ordered_json{{"agent_id", l->agent_id}, {"seq", l->seq}, {"last_seq", l->last_seq}};
}

ordered_json declared_lost(const DeclaredLost& d) {
  ordered_json j{{"seq", d.seq},
                 {"first_seq", d.gap.first_seq},
                 {"last_seq", d.gap.last_seq},
                 {"samples", d.gap.samples},
                 {"reason", d.gap.reason},
                 {"time_ns", d.gap.time_ns},
                 {"detail", d.gap.detail}};
  if (d.gap.predecessor) {
    j["predecessor"] = {{"agent_id", d.gap.predecessor->agent_id},
                        {"last_seq", d.gap.predecessor->last_seq}};
  }
  if (!d.declared_by.empty()) j["declared_by"] = d.declared_by;
  return j;
}

}  // namespace

std::string stored_json(std::uint64_t stored, bool duplicate) {
  return dump(ordered_json{{"stored", stored}, {"duplicate", duplicate}});
}

std::string unknown_processes_json(const StoreOutcome& outcome) {
  ordered_json list = ordered_json::array();
  for (const auto& p : outcome.unknown) {
    list.push_back({{"pid", p.pid}, {"start_time_ns", p.start_time_ns}});
  }
  return dump(ordered_json{{"error", outcome.why},
                           {"unknown_processes", std::move(list)},
                           {"unknown_count", outcome.unknown_count}});
}

std::string error_json(std::string_view message) {
  constexpr std::size_t kMax = 512;
  std::string m(message.substr(0, kMax));
  if (message.size() > kMax) m += "...";
  return dump(ordered_json{{"error", m}});
}

std::string health_json(bool healthy, const std::string* error,
                        const HousekeepingCounts* housekeeping) {
  ordered_json j{{"status", healthy ? "ok" : "unavailable"}};
  if (error != nullptr) j["error"] = *error;
  if (housekeeping != nullptr) {
    const HousekeepingCounts& h = *housekeeping;
    j["housekeeping"] = {
        {"buckets_summed", h.buckets_summed},   {"late_buckets", h.late_buckets},
        {"names_missing", h.names_missing},     {"chunks_deleted", h.chunks_deleted},
        {"rollups_deleted", h.rollups_deleted}, {"names_deleted", h.names_deleted},
        {"batches_deleted", h.batches_deleted}};
  }
  return dump(j);
}

std::string agents_json(const std::vector<AgentReport>& agents) {
  ordered_json list = ordered_json::array();
  for (const AgentReport& a : agents) {
    ordered_json lost = ordered_json::array();
    for (const DeclaredLost& d : a.declared_lost) lost.push_back(declared_lost(d));
    ordered_json partial = ordered_json::array();
    for (const PartialBatch& p : a.partial) {
      partial.push_back({{"seq", p.seq}, {"batch_samples", p.batch_samples}, {"stored", p.stored}});
    }
    list.push_back({{"agent_id", a.agent_id},
                    {"host", a.host},
                    {"credential", or_null(a.credential)},
                    {"last_seq", a.last_seq},
                    {"missing", ranges(a.missing)},
                    {"declared_lost", std::move(lost)},
                    {"partial", std::move(partial)},
                    {"duplicates_rejected", a.duplicates_rejected},
                    {"samples_stored", a.samples_stored},
                    {"last_seen_ns", a.last_seen_ns},
                    {"software", a.software},
                    {"predecessor", link(a.predecessor)},
                    {"successor", link(a.successor)}});
  }
  return dump(ordered_json{{"agents", std::move(list)}});
}

std::string samples_json(const SampleRows& rows) {
  std::size_t size = 40;
  for (const std::string& s : rows.json) size += s.size() + 1;
  std::string out;
  out.reserve(size);
  out += "{\"samples\":[";
  for (std::size_t i = 0; i < rows.json.size(); ++i) {
    if (i > 0) out.push_back(',');
    out += rows.json[i];  // stored as compact JSON objects by the decoder
  }
  out += "],\"truncated\":";
  out += rows.truncated ? "true" : "false";
  out += '}';
  return out;
}

std::string top_json(const TopRows& top) {
  ordered_json list = ordered_json::array();
  for (const TopEntry& e : top.top) {
    if (top.by == GroupKind::comm || top.by == GroupKind::cgroup) {
      list.push_back({{"name", e.group}, {"cpu_ns", e.cpu_ns}});
      continue;
    }
    if (top.by == GroupKind::host) {
      list.push_back({{"host", e.host}, {"cpu_ns", e.cpu_ns}});
      continue;
    }
    list.push_back({{"host", e.host},
                    {"pid", e.pid},
                    {"start_time_ns", e.start_time_ns},
                    {"comm", e.comm},
                    {"cmdline", e.cmdline},
                    {"cpu_ns", e.cpu_ns}});
  }
  return dump(ordered_json{{"by", group_kind_name(top.by)},
                           {"source", source_name(top.source)},
                           {"top", std::move(list)},
                           {"truncated", top.truncated}});
}

}  // namespace tally::collector
