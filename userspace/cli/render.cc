#include "cli/render.h"

#include <cctype>

#include <fmt/format.h>

#include "cli/lenient_json.h"
#include "cli/terminal_text.h"
#include "tally/time_util.h"

namespace tally::cli {

namespace {

using namespace lenient;

std::string ago(std::uint64_t then_ns, std::uint64_t now_ns) {
  if (then_ns == 0) return "never";
  if (then_ns >= now_ns) return "just now";
  return human_duration_ns(now_ns - then_ns) + " ago";
}

void line(std::string& out, std::string_view label, const std::string& text) {
  out += fmt::format("{:<10} {}\n", label, text);
}

void render_backend_and_sampling(std::string& out, const Json& s, std::uint64_t now_ns) {
  const Json& b = object(s, "backend");
  std::string programs;
  for (const auto& p : list(b, "programs")) programs += (programs.empty() ? "" : ", ") + text(p);
  if (str(b, "name") == "bpf") {
    line(out, "backend",
         fmt::format("bpf ({}): {}; run-queue wait {}", str(b, "attach_mode"), programs,
                     member(b, "counts_wait") == true ? "measured" : "not measured"));
  } else {
    line(out, "backend",
         fmt::format("procfs polling (misses short-lived processes; {} forks unseen)",
                     u64(b, "unseen_exits")));
  }

  const Json& m = object(s, "sampling");
  line(out, "sampling",
       fmt::format("every {} s, last sample {}; {} processes, {} cgroups last interval",
                   u64(m, "interval_s"), ago(u64(m, "last_sample_ns"), now_ns),
                   u64(m, "processes_last_interval"), u64(m, "cgroups_last_interval")));
  if (const std::uint64_t untracked = u64(m, "cgroups_untracked"); untracked > 0) {
    line(out, "",
         fmt::format("{} cgroup lines not made: more busy cgroups than tally tracks ({})",
                     untracked, u64(m, "cgroups_tracked")));
  }
  if (str(b, "name") == "bpf") {
    line(out, "",
         fmt::format("kernel map {}/{} entries, {} updates dropped ({} recently), {} missed runs",
                     u64(b, "map_used"), u64(b, "map_capacity"), u64(m, "dropped_updates_total"),
                     u64(m, "dropped_updates_recent"), u64(b, "recursion_misses")));
  }
  const Json& books = object(m, "books");
  if (books.is_object() && u64(books, "intervals") > 0) {
    line(out, "",
         fmt::format("books: {:+.3f} ms of {:.3f} ms busy CPU in no process line ({:+.3f}%) over "
                     "the last {} intervals",
                     number(books, "unaccounted_ns") / 1e6,
                     static_cast<double>(u64(books, "busy_ns")) / 1e6,
                     number(books, "unaccounted_pct"), u64(books, "intervals")));
  }
  const Json& k = object(s, "kubernetes");
  if (k.is_object() && !k.empty()) {
    line(out, "kubelet",
         fmt::format("{} pods known; {} fetches, {} failed{}", u64(k, "pods"), u64(k, "fetches"),
                     u64(k, "failures"),
                     str(k, "last_error").empty() ? "" : "; last error: " + str(k, "last_error")));
  }
}

void render_outbox(std::string& out, const Json& s) {
  const Json& o = object(s, "outbox");
  if (o.contains("error")) {
    line(out, "outbox", "ERROR: " + str(o, "error"));
  } else {
    line(out, "outbox",
         fmt::format("{}: {} batches pending ({}), oldest {}", str(o, "path"),
                     u64(o, "pending_batches"), human_bytes(u64(o, "pending_bytes")),
                     u64(o, "pending_batches") ? human_duration_ns(u64(o, "oldest_pending_age_ns"))
                                               : std::string("-")));
    std::string acked;
    for (const auto& k : list(o, "sinks")) {
      acked += fmt::format("{}{} {}", acked.empty() ? "" : ", ", str(k, "name"),
                           u64(k, "last_acked_seq"));
    }
    line(out, "", fmt::format("last seq formed {}, acknowledged: {}", u64(o, "last_seq"), acked));
    std::uint64_t gap_records = 0, gap_samples = 0;
    for (const auto& [reason, g] : object(o, "gaps").items()) {
      gap_records += u64(g, "records");
      gap_samples += u64(g, "samples");
    }
    line(
        out, "",
        fmt::format("gaps {} ({} samples lost), dead letters {}, quarantined files {}", gap_records,
                    gap_samples, u64(o, "dead_letters"), u64(o, "quarantined_files")));
    const bool limited = o.contains("cap_limited_by_filesystem") &&
                         o["cap_limited_by_filesystem"].is_boolean() &&
                         o["cap_limited_by_filesystem"].get<bool>();
    line(out, "",
         fmt::format("size {} of {} cap{} (names {}), file {}", human_bytes(u64(o, "stored_bytes")),
                     human_bytes(limited ? u64(o, "effective_cap_bytes") : u64(o, "cap_bytes")),
                     limited ? fmt::format(" (reduced from {}: its filesystem holds {})",
                                           human_bytes(u64(o, "cap_bytes")),
                                           human_bytes(u64(o, "filesystem_bytes")))
                             : "",
                     human_bytes(u64(o, "dictionary_bytes")), human_bytes(u64(o, "file_bytes"))));
    if (o.contains("disk_full") && o["disk_full"].is_boolean() && o["disk_full"].get<bool>()) {
      line(out, "",
           fmt::format("DISK FULL: appends fail, {} free; batches still ship ({} acks held "
                       "in memory)",
                       human_bytes(u64(o, "filesystem_free_bytes")), u64(o, "acks_unsaved")));
    }
    if (!str(o, "last_file_change").empty()) line(out, "", "file " + str(o, "last_file_change"));
    if (!str(o, "file_problem").empty()) line(out, "", "FILE PROBLEM: " + str(o, "file_problem"));
  }
}

void render_sinks(std::string& out, const Json& s, std::uint64_t now_ns) {
  if (list(s, "sinks").empty()) {
    line(out, "shipping", "no sink configured: samples stay in the outbox (up to its cap)");
  }
  for (const auto& k : list(s, "sinks")) {
    line(out, "sink",
         fmt::format("{} ({}) {}: {}, last success {}, {} batches sent", str(k, "name"),
                     str(k, "format"), str(k, "url"), str(k, "state"),
                     ago(u64(k, "last_success_ns"), now_ns), u64(k, "batches_sent")));
    if (!str(k, "last_error").empty()) {
      std::string retry;
      if (u64(k, "next_retry_ns") > now_ns) {
        retry = ", next retry in " + human_duration_ns(u64(k, "next_retry_ns") - now_ns);
      }
      line(out, "",
           fmt::format("last error {}: {} ({} consecutive failures{})",
                       ago(u64(k, "last_error_ns"), now_ns), str(k, "last_error"),
                       u64(k, "consecutive_failures"), retry));
    }
    // Losses are shown per sink: a sink whose format cannot carry gap
    // records (influx, otlp) only has them here and in the log.
    const std::uint64_t gap = u64(k, "gap_samples");
    const std::uint64_t rejected = u64(k, "samples_rejected");
    const std::uint64_t dropped = u64(k, "points_rejected");
    if (gap + rejected + dropped > 0) {
      const Json& gaps_shipped = member(k, "gaps_shipped");
      const bool shipped = !gaps_shipped.is_boolean() || gaps_shipped.get<bool>();
      line(out, "",
           fmt::format("lost {} samples ({}), {} rejected by the server, {} points it dropped", gap,
                       shipped ? "declared to the server" : "logged here only", rejected, dropped));
    }
    if (const std::uint64_t withheld = u64(k, "samples_withheld"); withheld > 0) {
      line(out, "",
           fmt::format("{} cgroup lines not sent: the server speaks an older protocol", withheld));
    }
    if (const std::uint64_t old = u64(k, "old_samples_refused"); old > 0) {
      line(out, "",
           fmt::format("{} samples refused as too old {}: {}", old,
                       ago(u64(k, "old_data_refused_ns"), now_ns), str(k, "old_data_reason")));
    }
  }
}

void render_self(std::string& out, const Json& s) {
  const Json& control = object(s, "control");
  if (u64(control, "connections_evicted") + u64(control, "accept_failures") +
          u64(control, "bad_requests") + u64(control, "handler_errors") >
      0) {
    line(out, "control",
         fmt::format("{} connections, {} closed at the connection bounds, {} failed "
                     "accepts, {} bad requests, {} failed handlers",
                     u64(control, "connections"), u64(control, "connections_evicted"),
                     u64(control, "accept_failures"), u64(control, "bad_requests"),
                     u64(control, "handler_errors")));
  }
  const Json& self = object(s, "self");
  line(out, "self",
       fmt::format("cpu {}, rss {}", human_duration_ns(u64(self, "cpu_ns")),
                   human_bytes(u64(self, "rss_bytes"))));
  const Json& privileges = object(self, "privileges");
  const Json& dropped = member(privileges, "dropped");
  if (dropped.is_boolean() && dropped.get<bool>()) {
    std::string caps;
    for (const auto& c : list(privileges, "capabilities"))
      caps += (caps.empty() ? "" : ", ") + text(c);
    line(out, "",
         fmt::format("privileges: {}; no_new_privs {}; seccomp filter of {} system calls",
                     caps.empty() ? "no capabilities" : caps,
                     member(privileges, "no_new_privs") == true ? "on" : "off",
                     u64(privileges, "seccomp_syscalls")));
    for (const auto& p : list(privileges, "problems")) line(out, "", "! not dropped: " + text(p));
  } else if (dropped.is_boolean()) {
    line(out, "", "privileges: all kept (drop_privileges = false)");
  }
}

}  // namespace

std::string render_status(const nlohmann::json& s, std::uint64_t now_ns) {
  std::string out;
  const Json& health = object(s, "health");
  const std::string state = str(health, "status");
  out += fmt::format("tallyd {} on {}, up {} (pid {})   {}\n", str(s, "version"), str(s, "host"),
                     human_duration_ns(u64(s, "uptime_ns")), u64(object(s, "self"), "pid"),
                     state == "healthy" ? "HEALTHY" : "DEGRADED");
  for (const auto& r : list(health, "reasons")) out += fmt::format("  ! {}\n", text(r));

  render_backend_and_sampling(out, s, now_ns);
  render_outbox(out, s);
  render_sinks(out, s, now_ns);
  render_self(out, s);
  return out;
}

std::vector<std::string> top_table(const nlohmann::json& top, bool with_container) {
  std::vector<std::string> out;
  const std::string by = str(top, "by");
  if (!by.empty() && by != "process") {
    std::string title = by;
    for (char& c : title) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    out.push_back(
        fmt::format("{:>6} {:>6} {:>6} {:>10}  {}", "PROCS", "%CPU", "%WAIT", "RSS", title));
    for (const auto& g : list(top, "groups")) {
      out.push_back(fmt::format("{:>6} {:>6.1f} {:>6.1f} {:>10}  {}", u64(g, "processes"),
                                number(g, "cpu_pct"), number(g, "wait_pct"),
                                human_bytes(u64(g, "rss_bytes")), str(g, "group")));
    }
    return out;
  }
  if (with_container) {
    out.push_back(fmt::format("{:>7} {:<16} {:>6} {:>6} {:>10} {:<20}  {}", "PID", "COMMAND",
                              "%CPU", "%WAIT", "RSS", "CONTAINER", "CMDLINE"));
  } else {
    out.push_back(fmt::format("{:>7} {:<16} {:>6} {:>6} {:>10}  {}", "PID", "COMMAND", "%CPU",
                              "%WAIT", "RSS", "CMDLINE"));
  }
  for (const auto& p : list(top, "processes")) {
    std::string container = str(p, "container");
    if (container.empty()) container = "-";
    std::string cmdline = str(p, "cmdline");
    if (cmdline.empty()) cmdline = "[" + str(p, "comm") + "]";
    const std::string figures =
        fmt::format("{:>7} {:<16} {:>6.1f} {:>6.1f} {:>10}", u64(p, "pid"), cut(str(p, "comm"), 16),
                    number(p, "cpu_pct"), number(p, "wait_pct"), human_bytes(u64(p, "rss_bytes")));
    out.push_back(with_container
                      ? fmt::format("{} {:<20}  {}", figures, cut(container, 20), cmdline)
                      : fmt::format("{}  {}", figures, cmdline));
  }
  return out;
}

std::string render_top(const nlohmann::json& top, std::size_t width) {
  std::string out;
  for (std::string& row : top_table(top, true)) {
    out += (width > 0 ? cut(std::move(row), width) : std::move(row)) + "\n";
  }
  if (const std::uint64_t omitted = u64(top, "omitted"); omitted > 0) {
    out += fmt::format(
        "({} more processes not shown: the answer is limited to 1 MiB; ask for "
        "fewer with -n)\n",
        omitted);
  }
  return out;
}

bool reports_healthy(const nlohmann::json& status) {
  const Json& state = member(object(status, "health"), "status");
  return state.is_string() && state.get_ref<const std::string&>() == "healthy";
}

std::string render_flush(const nlohmann::json& flush) {
  return fmt::format("{} batches shipped; outbox {}\n", u64(flush, "batches_sent"),
                     flush_emptied(flush) ? std::string("empty")
                                          : fmt::format("still has {} pending batches",
                                                        u64(flush, "pending_batches")));
}

bool flush_emptied(const nlohmann::json& flush) {
  const Json& empty = member(flush, "empty");
  return empty.is_boolean() && empty.get<bool>();
}

std::string render_json(const nlohmann::json& result) {
  // ASCII only: DEL and C1 controls are valid unescaped in JSON, and would
  // reach the terminal; as \u escapes they cannot.
  return result.dump(2, ' ', true, Json::error_handler_t::replace) + "\n";
}

}  // namespace tally::cli
