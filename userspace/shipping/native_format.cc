#include "shipping/native_format.h"

#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "samples/json_line.h"

namespace tally::shipping {

namespace {

// 3: samples may be cgroup lines; 2: process samples may leave out their
// names; 1: the first.
constexpr int kVersion = 3;

bool is_cgroup(const samples::Sample& s) {
  return std::holds_alternative<samples::CgroupSample>(s);
}

std::size_t cgroups_in(std::span<const samples::Sample> samples) {
  return static_cast<std::size_t>(std::count_if(samples.begin(), samples.end(), is_cgroup));
}

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
bool refuses_version(const HttpResponse& response, int version) {
  return response.status == 400 && response.body.find(fmt::format("version: unsupported version {}",
                                                                  version)) != std::string::npos;
}

}  // namespace

Result<std::string> NativeFormat::encode(const queue::Batch& batch,
                                         std::span<const samples::Sample> samples,
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
  if (static_cast<std::size_t>(first) + count > samples.size()) {
    return Error::format("encode batch {}: piece {}+{} outside its {} samples", batch.seq, first,
                         count, samples.size());
  }
  body.reserve(body.size() + 128 + static_cast<std::size_t>(count) * 400);
  // Before version 3 a batch is its samples without the cgroup lines, which
  // such a collector would refuse: indexes and counts are of what is sent.
  const bool without_cgroups = version_ < 3;
  const std::size_t sent_before =
      without_cgroups ? first - cgroups_in(samples.subspan(0, first)) : first;
  const std::size_t batch_total =
      without_cgroups ? samples.size() - cgroups_in(samples) : samples.size();
  fmt::format_to(std::back_inserter(body),
                 R"("seq":{},"kind":"samples","first_index":{},"batch_samples":{},"samples":[)",
                 batch.seq, sent_before, batch_total);
  bool first_sample = true;
  for (const samples::Sample& sample : samples.subspan(first, count)) {
    if (without_cgroups && is_cgroup(sample)) continue;
    if (!first_sample) body += ',';
    first_sample = false;
    // A process's names are left out when the collector holds exactly these.
    const auto* p = std::get_if<samples::ProcessSample>(&sample);
    const auto held = p ? held_.find(ProcessKey{p->pid, p->start_time_ns}) : held_.end();
    if (held != held_.end() && held->second == samples::names_digest(*p)) {
      body += samples::to_json_line(*p, samples::Names::left_out);
    } else {
      body += samples::to_json_line(sample);
    }
  }
  body += "]}";
  return body;
}

Verdict NativeFormat::judge(const HttpResponse& response) const {
  // docs/protocol.md, "Process names": the one 409 that is not permanent.
  if (response.status == 409 && response.body.find(R"("unknown_processes")") != std::string::npos) {
    return Verdict{Outcome::resend_in_full, 0, {}};
  }
  if (version_ > 1 && refuses_version(response, version_)) {
    return Verdict{Outcome::resend_in_full, 0, {}};
  }
  return SinkFormat::judge(response);
}

namespace {

// The newest version the collector says it speaks: "(this collector speaks
// 1 to 2)" or, from the first release, "(this collector speaks 1)"; one
// below `refused` when the message says neither.
int spoken_version(const std::string& body, int refused) {
  const std::string_view marker = "this collector speaks ";
  const auto at = body.find(marker);
  const auto close = at == std::string::npos ? at : body.find(')', at);
  if (close != std::string::npos) {
    const std::string_view said(body.data() + at + marker.size(), close - at - marker.size());
    const auto space = said.rfind(' ');
    const std::string_view last = space == std::string_view::npos ? said : said.substr(space + 1);
    if (last.size() == 1 && last[0] >= '1' && last[0] < '0' + refused) return last[0] - '0';
  }
  return refused - 1;
}

}  // namespace

std::string NativeFormat::adapt_to(const HttpResponse& response) {
  held_.clear();
  // Straight to the version the collector speaks: the shipper resends a
  // piece in full once only.
  if (version_ > 1 && refuses_version(response, version_)) {
    set_version(spoken_version(response.body, version_));
    if (version_ == 2) {
      return "the collector speaks protocol version 2 at most: its batches leave out the cgroup "
             "lines from now on (counted as samples_withheld); upgrade the collector to store "
             "them";
    }
    return "the collector speaks protocol version 1 only: sending version 1 (every process name "
           "in every sample, no cgroup lines) from now on; upgrade the collector to send less";
  }
  return "the collector does not hold process names it acknowledged (a new database?): sending "
         "them again";
}

void NativeFormat::acknowledged(std::span<const samples::Sample> samples, std::uint32_t first,
                                std::uint32_t count) {
  if (static_cast<std::size_t>(first) + count > samples.size()) return;
  if (version_ < kVersion) {
    withheld_ += cgroups_in(samples.subspan(first, count));
    ++acks_since_fallback_;
    // Only after a batch's last piece: the pieces of one batch must agree
    // on its form (first_index, batch_samples), or the collector refuses
    // the rest of it.
    if (acks_since_fallback_ >= kProbeAfterAcks && first + count == samples.size()) {
      // Try the newest version again with the next body (see the header).
      acks_since_fallback_ = 0;
      held_.clear();
      set_version(kVersion);
      return;
    }
  }
  if (version_ < 2) return;  // version 1 always sends every name
  for (const samples::Sample& sample : samples.subspan(first, count)) {
    const auto* p = std::get_if<samples::ProcessSample>(&sample);
    if (!p) continue;
    const ProcessKey key{p->pid, p->start_time_ns};
    if (p->exited) {
      held_.erase(key);
    } else {
      if (held_.size() >= kMaxNamesHeld && !held_.contains(key)) held_.clear();
      held_[key] = samples::names_digest(*p);
    }
  }
}

}  // namespace tally::shipping
