// `tally status`: what the daemon knows about itself, as one JSON object.
// The CLI renders it; docs/operations.md lists the fields.
#include <unistd.h>

#include "accounting/procfs.h"
#include "agent/book_balance.h"
#include "agent/daemon.h"
#include "tally/time_util.h"
#include "tally/version.h"

namespace tally::agent {

namespace {

nlohmann::json self_usage() {
  nlohmann::json self;
  self["pid"] = getpid();
  if (auto st = accounting::procfs::read_stat(static_cast<std::uint32_t>(getpid()))) {
    self["cpu_ns"] = (st->utime_ticks + st->stime_ticks) * accounting::procfs::ns_per_tick();
  }
  self["rss_bytes"] =
      accounting::procfs::read_rss_bytes(static_cast<std::uint32_t>(getpid())).value_or(0);
  return self;
}

// How the outbox copes with its file and its filesystem: the fields, and
// the degraded states in words (docs/operations.md).
void add_outbox_file_status(const queue::OutboxStats& o, nlohmann::json& out,
                            std::vector<std::string>& degraded) {
  out["effective_cap_bytes"] = o.effective_cap_bytes;
  out["cap_limited_by_filesystem"] = o.cap_limited_by_filesystem;
  out["filesystem_bytes"] = o.filesystem_bytes;
  out["filesystem_free_bytes"] = o.filesystem_free_bytes;
  out["wal_limit_bytes"] = o.wal_limit_bytes;
  out["disk_full"] = o.disk_full;
  out["acks_unsaved"] = o.acks_unsaved;
  out["opened_without_shm"] = o.opened_without_shm;
  out["file_changes"] = o.file_changes;
  out["last_file_change"] = o.last_file_change;
  out["file_problem"] = o.file_problem;
  out["lock_path"] = o.lock_path;
  out["predecessor"] = o.predecessor ? nlohmann::json{{"agent_id", o.predecessor->agent_id},
                                                      {"last_seq", o.predecessor->last_seq}}
                                     : nlohmann::json(nullptr);
  if (o.disk_full) {
    degraded.push_back(fmt::format(
        "outbox disk full: appends fail ({} samples lost so far, declared once a write "
        "succeeds); batches still ship{}{}",
        o.samples_lost_append,
        o.acks_unsaved > 0 ? fmt::format(", {} acks held in memory", o.acks_unsaved) : "",
        o.opened_without_shm ? " (opened without a -shm file)" : ""));
  }
  if (o.cap_limited_by_filesystem) {
    degraded.push_back(fmt::format(
        "outbox cap reduced by its filesystem: the outbox is kept within {} bytes, not the "
        "configured {} (the filesystem holds {} bytes, and the WAL needs {})",
        o.effective_cap_bytes, o.cap_bytes, o.filesystem_bytes, o.wal_limit_bytes));
  }
  if (!o.file_problem.empty()) degraded.push_back("outbox file problem: " + o.file_problem);
  if (!o.last_file_change.empty()) degraded.push_back("outbox file " + o.last_file_change);
  const auto& lost = o.gaps[static_cast<std::size_t>(queue::GapReason::outbox_lost)];
  if (lost.records > 0 && o.last_file_change.empty()) {
    degraded.push_back(
        fmt::format("{} samples were lost with an earlier outbox file (declared by "
                    "{} gap records)",
                    lost.samples, lost.records));
  }
}

// The outbox's figures (status snapshot) and the health rules about them.
nlohmann::json outbox_status(const queue::OutboxStats& o, const std::string& path,
                             std::vector<std::string>& degraded) {
  nlohmann::json out;
  nlohmann::json gaps = nlohmann::json::object();
  for (int r = 0; r < queue::kGapReasonCount; ++r) {
    gaps[queue::gap_reason_name(static_cast<queue::GapReason>(r))] = {
        {"records", o.gaps[static_cast<std::size_t>(r)].records},
        {"samples", o.gaps[static_cast<std::size_t>(r)].samples}};
  }
  nlohmann::json sinks = nlohmann::json::array();
  for (const auto& k : o.sinks) {
    sinks.push_back({{"name", k.name},
                     {"last_acked_seq", k.last_acked_seq},
                     {"pending", k.pending},
                     {"head_attempts", k.head_attempts}});
  }
  out = {{"path", path},
         {"agent_id", o.agent_id},
         {"pending_batches", o.pending_batches},
         {"pending_bytes", o.pending_bytes},
         {"staged_samples", o.staged_samples},
         {"oldest_pending_age_ns", o.oldest_pending_age_ns},
         {"last_seq", o.last_seq},
         {"sinks", sinks},
         {"gaps", gaps},
         {"dead_letters", o.dead_letters},
         {"dead_letters_discarded", o.dead_letters_discarded},
         {"samples_lost_append", o.samples_lost_append},
         {"dictionary_entries", o.dictionary_entries},
         {"dictionary_bytes", o.dictionary_bytes},
         {"stored_bytes", o.stored_bytes},
         {"cap_bytes", o.cap_bytes},
         {"file_bytes", o.file_bytes},
         {"quarantine_events", o.quarantine_events},
         {"quarantined_files", o.quarantined_files}};
  add_outbox_file_status(o, out, degraded);
  if (o.dead_letters > 0) {
    degraded.push_back(fmt::format("{} dead-lettered batches in the outbox", o.dead_letters));
  }
  const auto& cap = o.gaps[static_cast<std::size_t>(queue::GapReason::cap)];
  if (cap.samples > 0) {
    degraded.push_back(
        fmt::format("{} samples dropped to keep the outbox under its cap", cap.samples));
  }
  return out;
}

// Each sink as the status snapshot saw it, and the health rules about them.
nlohmann::json sinks_status(const std::vector<shipping::SinkStatus>& statuses,
                            std::vector<std::string>& degraded) {
  nlohmann::json sinks = nlohmann::json::array();
  for (const shipping::SinkStatus& st : statuses) {
    sinks.push_back({{"name", st.name},
                     {"format", st.format},
                     {"url", st.url},
                     {"state", shipping::sink_state_name(st.state)},
                     {"last_success_ns", st.last_success_ns},
                     {"last_error", st.last_error},
                     {"last_error_ns", st.last_error_ns},
                     {"consecutive_failures", st.consecutive_failures},
                     {"next_retry_ns", st.next_retry_ns},
                     {"batches_sent", st.batches_sent},
                     {"samples_sent", st.samples_sent},
                     {"bytes_sent", st.bytes_sent},
                     {"bytes_encoded", st.bytes_encoded},
                     {"batches_rejected", st.batches_rejected},
                     {"samples_rejected", st.samples_rejected},
                     {"requests_failed", st.requests_failed},
                     {"gaps_shipped", st.gaps_shipped},
                     {"gap_records", st.gap_records},
                     {"gap_samples", st.gap_samples},
                     {"names_resent", st.names_resent},
                     {"partial_successes", st.partial_successes},
                     {"points_rejected", st.points_rejected},
                     {"samples_withheld", st.samples_withheld},
                     {"withholding", st.withholding},
                     {"old_samples_refused", st.old_samples_refused},
                     {"old_data_reason", st.old_data_reason},
                     {"old_data_refused_ns", st.old_data_refused_ns}});
    if (st.state == shipping::SinkState::failing) {
      degraded.push_back(fmt::format("sink {} failing: {}", st.name, st.last_error));
    }
    if (st.withholding) {
      degraded.push_back(
          fmt::format("sink {}: {} cgroup lines not sent: the server speaks an older protocol "
                      "(upgrade tally-collector; tallyd tries the newer protocol hourly)",
                      st.name, st.samples_withheld));
    }
    if (st.old_samples_refused > 0) {
      degraded.push_back(fmt::format(
          "sink {}: the server refused {} samples as too old ({}); they are dead-lettered. "
          "After an outage it needs an out-of-order window (docs/sinks.md, \"Backfill\")",
          st.name, st.old_samples_refused, st.old_data_reason));
    }
    if (st.points_rejected > 0) {
      degraded.push_back(
          fmt::format("sink {}: the server dropped {} data points it acknowledged "
                      "(partial success; see the log)",
                      st.name, st.points_rejected));
    }
  }
  return sinks;
}

}  // namespace

nlohmann::json Daemon::backend_status() const {
  const accounting::BackendInfo info = parts_.backend->info();
  return {{"name", info.name},
          {"attach_mode", info.attach_mode},
          {"programs", info.programs},
          {"map_capacity", info.map_capacity},
          {"map_used", info.map_used},
          {"recursion_misses", info.recursion_misses},
          {"counts_wait", info.counts_wait},
          {"unseen_exits", info.unseen_exits}};
}

nlohmann::json Daemon::sampling_status(std::vector<std::string>& degraded) const {
  std::uint64_t recent_drops = 0;
  for (auto d : recent_drops_) recent_drops += d;
  nlohmann::json out = {
      {"interval_s", config_.interval_s},
      {"intervals", intervals_},
      {"last_sample_ns", last_sample_ns_},
      {"processes_tracked", sampler_.processes_tracked()},
      {"processes_last_interval", last_interval_ ? last_interval_->processes.size() : 0},
      {"cgroup_lines", config_.cgroup_lines},
      {"cgroups_last_interval", last_interval_ ? last_interval_->cgroups.size() : 0},
      {"cgroups_tracked", sampler_.cgroups_tracked()},
      {"cgroups_untracked", sampler_.cgroups_untracked()},
      {"dropped_updates_total", dropped_total_},
      {"dropped_updates_recent", recent_drops},
      {"samples_committed", samples_committed_},
      {"append_failures", append_failures_},
      {"last_append_error", last_append_error_}};
  if (recent_drops > 0) {
    degraded.push_back(
        fmt::format("{} updates dropped in the last {} intervals (raise "
                    "bpf.max_processes)",
                    recent_drops, recent_drops_.size()));
  }
  if (append_failing_) degraded.push_back("outbox append failing: " + last_append_error_);

  // The books: CPU the host was busy for that no process line carries, over
  // the last intervals; beyond the time still on its way, something is lost.
  const BookBalance books = judge_books(recent_books_);
  out["books"] = {
      {"intervals", recent_books_.size()},
      {"busy_ns", books.busy_ns},
      {"unaccounted_ns", books.unaccounted_ns},
      {"settled_unaccounted_ns", books.settled_ns},
      {"unaccounted_pct", books.busy_ns > 0 ? static_cast<double>(books.unaccounted_ns) * 100.0 /
                                                  static_cast<double>(books.busy_ns)
                                            : 0.0}};
  if (!books.balanced) {
    degraded.push_back(fmt::format(
        "books do not balance: {:.3f} ms of {:.3f} ms busy CPU in the last {} intervals is in no "
        "process line",
        static_cast<double>(books.settled_ns) / 1e6, static_cast<double>(books.busy_ns) / 1e6,
        recent_books_.size()));
  }
  return out;
}

void Daemon::service_status(nlohmann::json& s) const {
  const ControlServer::Counters control = control_.counters();
  s["control"] = {{"connections", control.connections},
                  {"connections_evicted", control.evicted},
                  {"accept_failures", control.accept_failures},
                  {"bad_requests", control.bad_requests},
                  {"handler_errors", control.handler_errors}};
  if (exporter_) {
    const PrometheusExporter::Counters exporter = exporter_->counters();
    s["prometheus"] = {{"listen", exporter_->listening_on()},
                       {"scrapes", exporter.scrapes},
                       {"connections", exporter.connections},
                       {"connections_evicted", exporter.evicted},
                       {"accept_failures", exporter.accept_failures},
                       {"requests_refused", exporter.requests_refused},
                       {"processes_tracked", totals_.tracked()},
                       {"processes_omitted", totals_.omitted_last_scrape()},
                       {"top", config_.prometheus_top},
                       {"min_cpu_ms", config_.prometheus_min_cpu_ms}};
  } else {
    s["prometheus"] = nullptr;
  }
}

nlohmann::json Daemon::self_status(std::vector<std::string>& degraded) const {
  nlohmann::json self = self_usage();
  self["internal_errors"] = internal_errors_.load();
  if (privileges_) {
    self["privileges"] = {{"dropped", true},
                          {"capabilities", privileges_->kept},
                          {"bounding_set_reduced", privileges_->bounding_set_reduced},
                          {"no_new_privs", privileges_->no_new_privs},
                          {"seccomp_syscalls", privileges_->syscalls_allowed},
                          {"problems", privileges_->problems}};
  } else {
    self["privileges"] = {{"dropped", false}};
  }
  if (internal_errors_ > 0) {
    degraded.push_back(
        fmt::format("{} internal errors: handlers that failed and were skipped "
                    "(see the log)",
                    internal_errors_.load()));
  }
  return self;
}

nlohmann::json Daemon::status_json() {
  nlohmann::json s;
  std::vector<std::string> degraded;

  s["version"] = kVersion;
  s["uptime_ns"] = monotonic_ns() - started_mono_ns_;
  s["started_ns"] = started_realtime_ns_;
  s["host"] = parts_.host;

  s["backend"] = backend_status();
  s["sampling"] = sampling_status(degraded);

  const StatusSnapshot& snapshot = *snapshot_;
  s["snapshot_ns"] = snapshot.taken_ns;
  if (snapshot.outbox) {
    s["outbox"] = outbox_status(*snapshot.outbox, parts_.outbox->path().string(), degraded);
  } else {
    s["outbox"] = {{"error", snapshot.outbox_error}};
    degraded.push_back(snapshot.outbox_error);
  }

  s["sinks"] = sinks_status(snapshot.sinks, degraded);
  service_status(s);
  s["self"] = self_status(degraded);
  if (kubelet_) {
    const KubeletPods::Stats k = kubelet_->stats();
    s["kubernetes"] = {{"pods", k.pods},
                       {"fetches", k.fetches},
                       {"failures", k.failures},
                       {"failing_streak", k.failing_streak},
                       {"misses", k.misses},
                       {"last_success_ns", k.last_success_ns},
                       {"last_error", k.last_error}};
    // A failing kubelet loses no sample (they carry pod ids), but the names
    // people look for are missing: worth a reason once it is not a blip.
    if (k.failing_streak >= 3) {
      degraded.push_back(fmt::format("kubelet pods: {} fetches failed in a row: {}",
                                     k.failing_streak, k.last_error));
    }
  }
  s["health"] = {{"status", degraded.empty() ? "healthy" : "degraded"}, {"reasons", degraded}};
  return s;
}

}  // namespace tally::agent
