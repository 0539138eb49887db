#include "native_format.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tally/parse_number.h"

namespace tally::shipping {

namespace {

constexpr int kVersion = 2;

}  // namespace

NativeFormat::NativeFormat(std::string agent_id, std::string host)
    : agent_id_(std::move(agent_id)), host_(std::move(host)) {
  set_version(kVersion);
}

void NativeFormat::set_version(int version) {
  version_ = version;
  const auto replace = nlohmann::json::error_handler_t::replace;
  envelope_head_ = fmt::format(R"({{"version":{},"agent_id":{},"host":{},)", version,
                               nlohmann::json(agent_id_).dump(-1, ' ', false, replace),
                               nlohmann::json(host_).dump(-1, ' ', false, replace));
}

namespace {

// What a collector of an older release answers a version it does not speak
// (docs/protocol.md, "Versioning"): 400 {"error":"version: unsupported version 2 (…)"}.
bool refuses_version(const HttpResponse& response) {
  return response.status == 400 &&
         response.body.find("version: unsupported version") != std::string::npos;
}

}  // namespace

bool NativeFormat::read_process_line(const std::vector<JsonMember>& members, ProcessLine& out) {
  if (members.size() > std::size(out.is_name)) return false;
  bool process = false, has_pid = false, has_start = false;
  int names = 0;
  std::size_t digest = 0;
  out.exited = false;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const JsonMember& m = members[i];
    out.is_name[i] = m.key == "comm" || m.key == "cmdline" || m.key == "cgroup";
    if (out.is_name[i]) {
      ++names;
      // Keyed by member name too, so swapped values are different names.
      digest = digest * 31 + std::hash<std::string_view>()(m.key);
      digest = digest * 31 + std::hash<std::string_view>()(m.value);
    } else if (m.key == "kind") {
      process = m.value == R"("process")";
    } else if (m.key == "pid") {
      has_pid = parse_decimal(m.value, out.key.pid);
    } else if (m.key == "start_time_ns") {
      has_start = parse_decimal(m.value, out.key.start_time_ns);
    } else if (m.key == "exited") {
      out.exited = m.value == "true";
    }
  }
  out.names_digest = digest;
  return process && has_pid && has_start && names == 3;
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
    // docs/protocol.md, "Gap records": the agent id whose data this one continues.
    if (g.predecessor) {
      gap["predecessor"] = {{"agent_id", g.predecessor->agent_id},
                            {"last_seq", g.predecessor->last_seq}};
    }
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
  ProcessLine process;
  for (std::uint32_t i = 0; i < count; ++i) {
    if (i) body += ',';
    const std::string_view line = lines[first + i];
    // A line goes out as committed unless the collector holds this
    // process's names, exactly these: then the names are left out.
    if (held_.empty() || !scan_members(line, members_) || !read_process_line(members_, process)) {
      body += line;
      continue;
    }
    auto it = held_.find(process.key);
    if (it == held_.end() || it->second != process.names_digest) {
      body += line;
      continue;
    }
    body += '{';
    bool first_member = true;
    for (std::size_t m = 0; m < members_.size(); ++m) {
      if (process.is_name[m]) continue;
      if (!first_member) body += ',';
      first_member = false;
      body += '"';
      body += members_[m].key;
      body += "\":";
      body += members_[m].value;
    }
    body += '}';
  }
  body += "]}";
  return body;
}

Verdict NativeFormat::judge(const HttpResponse& response) const {
  // docs/protocol.md, "Process names": the one 409 that is not permanent.
  if (response.status == 409 && response.body.find(R"("unknown_processes")") != std::string::npos) {
    return Verdict{Outcome::resend_in_full, 0, {}};
  }
  if (version_ > 1 && refuses_version(response)) return Verdict{Outcome::resend_in_full, 0, {}};
  return SinkFormat::judge(response);
}

std::string NativeFormat::adapt_to(const HttpResponse& response) {
  held_.clear();
  if (version_ > 1 && refuses_version(response)) {
    set_version(1);
    return "the collector speaks protocol version 1 only: sending version 1 (every process name "
           "in every sample) from now on; upgrade the collector to send less";
  }
  return "the collector does not hold process names it acknowledged (a new database?): sending "
         "them again";
}

void NativeFormat::acknowledged(std::span<const std::string_view> lines, std::uint32_t first,
                                std::uint32_t count) {
  if (version_ < 2) return;  // version 1 always sends every name
  ProcessLine process;
  for (std::uint32_t i = 0; i < count && first + i < lines.size(); ++i) {
    if (!scan_members(lines[first + i], members_) || !read_process_line(members_, process)) {
      continue;
    }
    if (process.exited) {
      held_.erase(process.key);
    } else {
      if (held_.size() >= kMaxNamesHeld && !held_.contains(process.key)) held_.clear();
      held_[process.key] = process.names_digest;
    }
  }
}

}  // namespace tally::shipping
