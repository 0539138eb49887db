#include "render.h"

#include <fmt/format.h>

#include "tally/time_util.h"

namespace tally::cli {

namespace {

std::uint64_t u64(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<std::uint64_t>() : 0;
}

std::string str(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : std::string();
}

std::string ago(std::uint64_t then_ns, std::uint64_t now_ns) {
  if (then_ns == 0) return "never";
  if (then_ns >= now_ns) return "just now";
  return human_duration_ns(now_ns - then_ns) + " ago";
}

}  // namespace

std::string render_status(const nlohmann::json& s, std::uint64_t now_ns) {
  std::string out;
  auto line = [&out](std::string_view label, const std::string& text) {
    out += fmt::format("{:<10} {}\n", label, text);
  };
  const auto& health = s["health"];
  const std::string state = str(health, "status");
  out += fmt::format("tallyd {} on {}, up {} (pid {})   {}\n", str(s, "version"), str(s, "host"),
                     human_duration_ns(u64(s, "uptime_ns")), u64(s["self"], "pid"),
                     state == "healthy" ? "HEALTHY" : "DEGRADED");
  if (health.contains("reasons")) {
    for (const auto& r : health["reasons"]) out += fmt::format("  ! {}\n", r.get<std::string>());
  }

  const auto& b = s["backend"];
  std::string programs;
  for (const auto& p : b["programs"]) programs += (programs.empty() ? "" : ", ") + p.get<std::string>();
  if (str(b, "name") == "bpf") {
    line("backend", fmt::format("bpf ({}): {}", str(b, "attach_mode"), programs));
  } else {
    line("backend", fmt::format("procfs polling (misses short-lived processes; {} forks unseen)",
                                u64(b, "unseen_exits")));
  }

  const auto& m = s["sampling"];
  line("sampling", fmt::format("every {} s, last sample {}; {} processes last interval",
                               u64(m, "interval_s"), ago(u64(m, "last_sample_ns"), now_ns),
                               u64(m, "processes_last_interval")));
  if (str(b, "name") == "bpf") {
    line("", fmt::format("kernel map {}/{} entries, {} updates dropped ({} recently), {} missed runs",
                         u64(b, "map_used"), u64(b, "map_capacity"),
                         u64(m, "dropped_updates_total"), u64(m, "dropped_updates_recent"),
                         u64(b, "recursion_misses")));
  }

  const auto& o = s["outbox"];
  if (o.contains("error")) {
    line("outbox", "ERROR: " + str(o, "error"));
  } else {
    line("outbox", fmt::format("{}: {} batches pending ({}), oldest {}", str(o, "path"),
                               u64(o, "pending_batches"), human_bytes(u64(o, "pending_bytes")),
                               u64(o, "pending_batches")
                                   ? human_duration_ns(u64(o, "oldest_pending_age_ns"))
                                   : std::string("-")));
    std::string acked;
    for (const auto& k : o["sinks"]) {
      acked += fmt::format("{}{} {}", acked.empty() ? "" : ", ", str(k, "name"),
                           u64(k, "last_acked_seq"));
    }
    line("", fmt::format("last seq formed {}, acknowledged: {}", u64(o, "last_seq"), acked));
    std::uint64_t gap_records = 0, gap_samples = 0;
    for (const auto& [reason, g] : o["gaps"].items()) {
      gap_records += u64(g, "records");
      gap_samples += u64(g, "samples");
    }
    line("", fmt::format("gaps {} ({} samples lost), dead letters {}, quarantined files {}",
                         gap_records, gap_samples, u64(o, "dead_letters"),
                         u64(o, "quarantined_files")));
    line("", fmt::format("size {} of {} cap, file {}", human_bytes(u64(o, "stored_bytes")),
                         human_bytes(u64(o, "cap_bytes")), human_bytes(u64(o, "file_bytes"))));
  }

  if (s["sinks"].empty()) {
    line("shipping", "no sink configured: samples stay in the outbox (up to its cap)");
  }
  for (const auto& k : s["sinks"]) {
    line("sink", fmt::format("{} ({}) {}: {}, last success {}, {} batches sent", str(k, "name"),
                             str(k, "format"), str(k, "url"), str(k, "state"),
                             ago(u64(k, "last_success_ns"), now_ns), u64(k, "batches_sent")));
    if (!str(k, "last_error").empty()) {
      std::string retry;
      if (u64(k, "next_retry_ns") > now_ns) {
        retry = ", next retry in " + human_duration_ns(u64(k, "next_retry_ns") - now_ns);
      }
      line("", fmt::format("last error {}: {} ({} consecutive failures{})",
                           ago(u64(k, "last_error_ns"), now_ns), str(k, "last_error"),
                           u64(k, "consecutive_failures"), retry));
    }
    // Losses are shown per sink: a sink whose format cannot carry gap
    // records (influx, otlp) only has them here and in the log.
    const std::uint64_t gap = u64(k, "gap_samples");
    const std::uint64_t rejected = u64(k, "samples_rejected");
    const std::uint64_t dropped = u64(k, "points_rejected");
    if (gap + rejected + dropped > 0) {
      const bool shipped = !k.contains("gaps_shipped") || k["gaps_shipped"].get<bool>();
      line("",
           fmt::format("lost {} samples ({}), {} rejected by the server, {} points it dropped", gap,
                       shipped ? "declared to the server" : "logged here only", rejected, dropped));
    }
  }
  line("self", fmt::format("cpu {}, rss {}", human_duration_ns(u64(s["self"], "cpu_ns")),
                           human_bytes(u64(s["self"], "rss_bytes"))));
  return out;
}

std::string render_top(const nlohmann::json& top, std::size_t width) {
  std::string out =
      fmt::format("{:>7} {:<16} {:>6} {:>10}  {}\n", "PID", "COMMAND", "%CPU", "RSS", "CMDLINE");
  for (const auto& p : top["processes"]) {
    std::string row = fmt::format("{:>7} {:<16} {:>6.1f} {:>10}  ", p["pid"].get<std::uint64_t>(),
                                  str(p, "comm").substr(0, 16), p["cpu_pct"].get<double>(),
                                  human_bytes(u64(p, "rss_bytes")));
    std::string cmdline = str(p, "cmdline");
    if (cmdline.empty()) cmdline = "[" + str(p, "comm") + "]";
    row += cmdline;
    if (width > 0 && row.size() > width) {
      std::size_t cut = width;
      // Never split a UTF-8 sequence: back up to the start of a character.
      while (cut > 0 && (static_cast<unsigned char>(row[cut]) & 0xC0) == 0x80) --cut;
      row.resize(cut);
    }
    out += row + "\n";
  }
  return out;
}

}  // namespace tally::cli
