#include "agent/daemon.h"

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include <boost/asio/post.hpp>

#include "accounting/procfs.h"
#include "agent/config_file.h"
#include "agent/kubelet_pods.h"
#include "agent/restart_needed.h"
#include "agent/sink_formats.h"
#include "agent/start_up_pages.h"
#include "agent/token_file.h"
#include "agent/top_rows.h"
#include "samples/json_line.h"
#include "tally/log.h"
#include "tally/time_util.h"
#include "tally/utf8.h"
#include "tally/version.h"

namespace tally::agent {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Runs `io` until it is stopped. A handler that throws is a bug in tallyd,
// but one bad input must not end sampling, storing or the control socket:
// the handler is dropped, the error logged and counted, and the loop goes on.
void run_until_stopped(asio::io_context& io, const char* thread,
                       std::atomic<std::uint64_t>& internal_errors) {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      ++internal_errors;
      log::error("{} thread: a handler failed: {}; carrying on without it", thread, e.what());
    }
  }
}

}  // namespace

Daemon::Daemon(DaemonParts parts)
    : parts_(std::move(parts)),
      config_(parts_.config),
      signals_(io_, SIGINT, SIGTERM),
      timer_(io_),
      next_deadline_(Clock::now()),
      sampler_(*parts_.backend,
               accounting::SamplerOptions{parts_.host, config_.include_idle,
                                          config_.max_cmdline_bytes, config_.cgroup_lines},
               monotonic_ns()),
      control_(io_,
               [this](const control::Request& r, ControlServer::Respond respond) {
                 handle_request(r, std::move(respond));
               }),
      encoder_(parts_.outbox->first_unused_dictionary_key()),
      totals_(ProcessTotalsOptions{config_.prometheus_top,
                                   config_.prometheus_min_cpu_ms * 1'000'000ULL}),
      started_realtime_ns_(realtime_ns()),
      started_mono_ns_(monotonic_ns()) {
  signals_.add(SIGHUP);
}

Daemon::~Daemon() {
  for (auto& s : shippers_) s->stop();
  store_work_.reset();
  if (store_thread_.joinable()) store_thread_.join();
}

Status Daemon::make_shippers() {
  for (const SinkConfig& sink : config_.sinks) {
    auto token = read_token(sink.token_file);
    if (!token.ok()) return token.error().context(fmt::format("sink {}", sink.name));
    shipping::ShipperOptions o;
    o.sink = sink.name;
    o.url = sink_request_url(sink);
    o.agent_id = parts_.outbox->agent_id();
    o.bearer_token = *token;
    if (!sink.token_file.empty()) {
      o.reload_token = [path = sink.token_file] { return read_token(path); };
    }
    if (!sink.password_file.empty()) {
      auto basic = read_basic_auth(sink.username, sink.password_file);
      if (!basic.ok()) return basic.error().context(fmt::format("sink {}", sink.name));
      o.basic_auth = *basic;
      o.basic_auth_from_reload = true;
      o.reload_token = [user = sink.username, path = sink.password_file] {
        return read_basic_auth(user, path);
      };
    }
    o.http.connect_timeout = std::chrono::seconds(sink.connect_timeout_s);
    o.http.timeout = std::chrono::seconds(sink.timeout_s);
    o.http.ca_file = sink.ca_file;
    o.backoff.base = std::chrono::milliseconds(sink.backoff_base_ms);
    o.backoff.cap = std::chrono::seconds(sink.backoff_cap_s);
    o.gzip_level = sink.gzip_level;
    o.on_progress = [this] { request_snapshot(); };
    auto format = make_sink_format(
        sink,
        SinkIdentity{parts_.outbox->agent_id(), parts_.host, parts_.host_id, std::string(kVersion),
                     sink_state_path(config_.outbox_path, sink.name)},
        config_.groups);
    if (!format.ok()) return format.error();
    shippers_.push_back(std::make_unique<shipping::Shipper>(*parts_.outbox, std::move(o),
                                                            std::move(format).value()));
  }
  return ok_status();
}

// Groups per dimension on /metrics (the sinks have their own max_groups).
constexpr std::uint32_t kExporterMaxGroups = 50;

Status Daemon::start_exporter() {
  if (config_.prometheus_listen.empty()) return ok_status();
  auto address = parse_listen_address(config_.prometheus_listen);
  if (!address.ok()) return address.error().context("prometheus exporter");
  auto groups = compile_groups(config_.groups);
  if (!groups.ok()) return groups.error().context("prometheus exporter");
  group_totals_.emplace(kExporterMaxGroups, std::move(*groups));
  exporter_.emplace(io_, [this] { return render_metrics(); });
  if (auto st = exporter_->listen(*address); !st.ok()) return st;
  log::info("prometheus exporter listening on {} (GET /metrics; top {} processes)",
            exporter_->listening_on(), config_.prometheus_top);
  return ok_status();
}

std::string Daemon::render_metrics() {
  ExporterHealth h;
  const StatusSnapshot& snapshot = *snapshot_;
  if (snapshot.outbox) {
    h.outbox_pending_batches = snapshot.outbox->pending_batches;
    h.outbox_stored_bytes = snapshot.outbox->stored_bytes;
  }
  h.samples_committed = samples_committed_;
  h.dropped_updates = dropped_total_;
  h.append_failures = append_failures_;
  for (const shipping::SinkStatus& st : snapshot.sinks) {
    SinkHealth k;
    k.name = st.name;
    k.failing = st.state == shipping::SinkState::failing;
    k.samples_sent = st.samples_sent;
    k.requests_failed = st.requests_failed;
    k.samples_lost = st.gap_samples + st.samples_rejected + st.points_rejected;
    if (snapshot.outbox) {
      for (const auto& o : snapshot.outbox->sinks) {
        if (o.name == st.name) k.pending_batches = o.pending;
      }
    }
    h.sinks.push_back(std::move(k));
  }
  auto processes = totals_.scrape();
  h.processes_tracked = totals_.tracked();
  h.processes_omitted = totals_.omitted_last_scrape();
  return render_exposition(processes, h, group_totals_ ? &*group_totals_ : nullptr);
}

int Daemon::run() {
  if (auto st = make_shippers(); !st.ok()) {
    log::error("{}", st.error().message());
    return 2;
  }
  if (auto st = control_.listen(config_.socket_path, config_.socket_group); !st.ok()) {
    log::error("{}", st.error().message());
    return 1;
  }
  if (auto st = start_exporter(); !st.ok()) {
    log::error("{}", st.error().message());
    return 1;
  }
  // Start-up is over (BPF loaded, libcurl and its TLS initialised, outbox
  // opened) and tallyd is still one thread: nothing can map or unmap
  // anything while the start-up pages are handed back.
  if (auto dropped = drop_start_up_pages(); dropped.ok()) {
    log::debug("gave back {} KiB of start-up pages ({} mappings)", dropped->bytes / 1024,
               dropped->mappings);
  } else {
    log::warning("giving back start-up pages: {}", dropped.error().message());
  }
  // Still one thread, and everything that needed privilege is done.
  if (config_.drop_privileges) {
    privileges_ = drop_privileges(PrivilegeNeeds{parts_.backend->info().name == "bpf"});
    log::info("privileges for the steady state: {}", privileges_->summary());
    for (const auto& problem : privileges_->problems) {
      log::warning("dropping privileges: {}; running with more than tallyd needs", problem);
    }
  }
  // The first snapshot, before any other thread runs: the main thread
  // always has one to read.
  snapshot_ = std::make_shared<const StatusSnapshot>(take_snapshot());
  for (auto& s : shippers_) s->start();
  if (config_.kubernetes) {
    KubeletOptions k;
    k.url = config_.kubelet_url;
    k.token_file = config_.kubelet_token_file;
    k.ca_file = config_.kubelet_ca_file;
    k.tls_verify = config_.kubelet_tls_verify;
    if (!k.tls_verify) log::warning("kubelet: tls_verify = false, its certificate is not checked");
    kubelet_ = std::make_unique<KubeletPods>(std::move(k));
    kubelet_->start();
  }
  store_work_.emplace(store_io_.get_executor());
  store_thread_ = std::thread([this] { run_until_stopped(store_io_, "store", internal_errors_); });

  log::info("sampling every {} s, outbox {}, {} sink(s), control socket {}", config_.interval_s,
            parts_.outbox->path().string(), shippers_.size(), config_.socket_path);
  do_wait_signal();
  do_wait_interval();
  run_until_stopped(io_, "main", internal_errors_);
  return exit_code_;
}

// --- sampling --------------------------------------------------------------

void Daemon::do_wait_interval() {
  next_deadline_ += std::chrono::seconds(config_.interval_s);
  timer_.expires_at(next_deadline_);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    // Re-armed first: sampling goes on even if this interval's work fails.
    if (!config_.once) do_wait_interval();
    take_sample(config_.once);
  });
}

void Daemon::take_sample(bool final) {
  auto samples = sampler_.sample();
  if (!samples.ok()) {
    // Counters are cumulative: the next interval reports this one's time.
    log::warning("{}", samples.error().message());
    if (final) on_stored(false, true);
    return;
  }
  ++intervals_;
  if (kubelet_) kubelet_->annotate(*samples);
  last_sample_ns_ = samples->host.ts_ns;
  dropped_total_ += samples->host.dropped_updates;
  recent_drops_.push_back(samples->host.dropped_updates);
  if (recent_drops_.size() > 10) recent_drops_.pop_front();
  recent_books_.push_back({samples->host.busy_ns, samples->host.unaccounted_ns});
  if (recent_books_.size() > 10) recent_books_.pop_front();
  if (exporter_) {
    totals_.add_interval(samples->processes);
    if (group_totals_) group_totals_->add_interval(*samples);
    // Exits the backend did not report: gone from /proc means gone.
    totals_.sweep([](std::uint32_t pid, std::uint64_t) {
      std::error_code ignored;  // not the throwing overload: an odd /proc entry is not fatal
      return std::filesystem::exists(fmt::format("/proc/{}", pid), ignored);
    });
  }
  // Shared, not copied: `tally top` reads it here, the store thread encodes it.
  last_interval_ = std::make_shared<const samples::IntervalSamples>(std::move(*samples));
  asio::post(store_io_, [this, interval = last_interval_, final] {
    try {
      store(*interval, final);
    } catch (const std::exception& e) {
      store_failed(e.what(), final);
    }
  });
}

void Daemon::store(const samples::IntervalSamples& samples, bool final) {
  // A recreated outbox lost the process names stored before (it was
  // truncated under us): name every process afresh, before encoding.
  if (auto lost = parts_.outbox->check_file(realtime_ns()); lost.ok() && *lost) {
    encoder_.not_stored();
  }
  // Stored as compact records (compact_records.h): the shippers turn them
  // back into samples, which each sink format encodes.
  samples::CompactInterval compact = encoder_.encode(samples);
  auto appended = parts_.outbox->append(compact.records, realtime_ns(), compact.dictionary);
  const bool ok = appended.ok();
  if (!ok) encoder_.not_stored();
  std::string error = ok ? std::string() : appended.error().message();
  if (ok && config_.to_stdout) {
    // Printed only once committed: the lines shown are exactly the stored
    // ones, as a sink receives them.
    std::string out;
    for (const auto& line : samples::json_lines(samples)) {
      out += line;
      out += '\n';
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fflush(stdout);
  }
  if (ok && appended->batches_formed > 0) {
    for (auto& s : shippers_) s->notify();
  }
  // The interval's lines and encoding buffers are freed by now; hand the
  // pages back instead of holding them until the next interval.
  malloc_trim(0);
  publish_snapshot();
  const std::size_t n = compact.records.size();
  asio::post(io_, [this, ok, error = std::move(error), n, final] {
    if (ok) {
      samples_committed_ += n;
      if (append_failing_) log::info("outbox append recovered");
      append_failing_ = false;
    } else {
      ++append_failures_;
      last_append_error_ = error;
      if (!append_failing_) {
        log::warning("{}; samples are counted as lost and declared in a gap record", error);
      }
      append_failing_ = true;
    }
    on_stored(ok, final);
  });
}

StatusSnapshot Daemon::take_snapshot() {
  StatusSnapshot snapshot;
  snapshot.taken_ns = realtime_ns();
  if (auto stats = parts_.outbox->stats(snapshot.taken_ns); stats.ok()) {
    snapshot.outbox = std::move(stats).value();
  } else {
    snapshot.outbox_error = stats.error().message();
  }
  snapshot.sinks.reserve(shippers_.size());
  for (const auto& shipper : shippers_) snapshot.sinks.push_back(shipper->status());
  return snapshot;
}

void Daemon::publish_snapshot() {
  auto snapshot = std::make_shared<const StatusSnapshot>(take_snapshot());
  asio::post(io_,
             [this, snapshot = std::move(snapshot)]() mutable { snapshot_ = std::move(snapshot); });
}

void Daemon::request_snapshot() {
  if (snapshot_requested_.exchange(true)) return;
  asio::post(store_io_, [this] {
    snapshot_requested_ = false;
    publish_snapshot();
  });
}

void Daemon::store_failed(const std::string& what, bool final) {
  ++internal_errors_;
  encoder_.not_stored();  // the dictionary may not hold what the encoder sent
  std::string error = fmt::format("storing an interval failed: {}", what);
  log::error("{}", error);
  asio::post(io_, [this, error = std::move(error), final] {
    ++append_failures_;
    last_append_error_ = error;
    on_stored(false, final);  // a final interval still leads to the shutdown
  });
}

void Daemon::on_stored(bool ok, bool final) {
  (void)ok;
  if (final) begin_shutdown();
}

// --- signals and shutdown ----------------------------------------------------

void Daemon::do_wait_signal() {
  signals_.async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      do_wait_signal();  // first: a reload that fails must not leave signals unheard
      reload_config();
      return;
    }
    if (stopping_) {
      log::info("second {}: stopping now; pending batches stay in the outbox", strsignal(signo));
      finish();
      return;
    }
    log::info("{}: taking a final sample, then shipping for up to {} s", strsignal(signo),
              config_.shutdown_timeout_s);
    stopping_ = true;
    timer_.cancel();
    take_sample(true);
    do_wait_signal();
  });
}

void Daemon::reload_config() {
  auto fresh = resolve_config(parts_.command_line);
  if (!fresh.ok()) {
    log::error("config reload rejected, keeping the running config: {}", fresh.error().message());
    return;
  }
  const AgentConfig& next = *fresh;
  const std::vector<std::string> need_restart = restart_needed(config_, next);
  const bool interval_changed = next.interval_s != config_.interval_s;
  config_ = reloaded(config_, next);
  std::string note;
  for (const auto& n : need_restart) note += (note.empty() ? "" : ", ") + n;
  // Logged before the new level applies, so the confirmation is never muted.
  log::info("config reloaded (interval {} s, log level {}){}{}", config_.interval_s,
            config_.log_level, note.empty() ? "" : "; restart to apply changes to: ", note);
  log::set_level(log::parse_level(config_.log_level));
  if (interval_changed && !stopping_) {
    timer_.cancel();
    next_deadline_ = Clock::now();
    do_wait_interval();
  }
}

void Daemon::begin_shutdown() {
  stopping_ = true;
  timer_.cancel();
  if (shippers_.empty() || config_.shutdown_timeout_s == 0) {
    finish();
    return;
  }
  const auto deadline = Clock::now() + std::chrono::seconds(config_.shutdown_timeout_s);
  ship_everything(deadline, [this](bool drained) {
    if (!drained) {
      log::warning("stopping with {} batches still pending; they stay in the outbox",
                   snapshot_->pending_batches());
    }
    finish();
  });
}

void Daemon::ship_everything(Clock::time_point deadline, std::function<void(bool)> done) {
  asio::post(store_io_, [this, deadline, done = std::move(done)]() mutable {
    (void)parts_.outbox->form_all(realtime_ns());  // staged samples ship too
    publish_snapshot();                            // reaches the main thread first
    asio::post(io_, [this, deadline, done = std::move(done)]() mutable {
      for (auto& s : shippers_) s->flush_now(deadline);
      do_wait_drained(deadline, std::move(done));
    });
  });
}

void Daemon::do_wait_drained(Clock::time_point deadline, std::function<void(bool)> done) {
  // The snapshot follows each delivery attempt, so it sees the last ack.
  const bool drained = snapshot_->drained();
  if (drained || Clock::now() >= deadline || finished_) {
    done(drained);
    return;
  }
  // Only while flushing: a short check interval, bounded by the deadline.
  auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
  timer->async_wait([this, timer, deadline, done = std::move(done)](
                        const boost::system::error_code&) { do_wait_drained(deadline, done); });
}

void Daemon::finish() {
  if (finished_) return;
  finished_ = true;
  stopping_ = true;
  timer_.cancel();
  signals_.cancel();
  control_.stop();
  if (exporter_) exporter_->stop();
  for (auto& s : shippers_) s->stop();
  store_work_.reset();
  io_.stop();
}

// --- control socket ---------------------------------------------------------

void Daemon::handle_request(const control::Request& request, ControlServer::Respond respond) {
  // Every field was checked by control::parse_request: the values are in range.
  if (std::holds_alternative<control::StatusRequest>(request)) {
    respond(control::make_ok(status_json()));
  } else if (const auto* top = std::get_if<control::TopRequest>(&request)) {
    respond(control::make_ok(top_json(*top)));
  } else if (const auto* f = std::get_if<control::FlushRequest>(&request)) {
    flush(std::chrono::seconds(f->timeout_s), std::move(respond));
  }
}

std::uint64_t Daemon::batches_sent() const {
  std::uint64_t n = 0;
  for (const auto& s : shippers_) n += s->status().batches_sent;
  return n;
}

void Daemon::flush(std::chrono::seconds timeout, ControlServer::Respond respond) {
  if (shippers_.empty()) {
    respond(
        control::make_error("no sink is configured: samples stay in the outbox "
                            "(configure one with --endpoint or a [[sink]] table)"));
    return;
  }
  const std::uint64_t sent_before = batches_sent();
  const auto deadline = Clock::now() + timeout;
  ship_everything(deadline, [this, sent_before, respond = std::move(respond)](bool drained) {
    for (auto& s : shippers_) s->flush_now(Clock::now());  // back to normal pacing
    nlohmann::json result;
    result["batches_sent"] = batches_sent() - sent_before;
    result["empty"] = drained;
    result["pending_batches"] = snapshot_->pending_batches();
    respond(control::make_ok(result));
  });
}

namespace {

// A string of the status cut to `bytes`, never inside a UTF-8 sequence.
std::string cut_text(const nlohmann::json& v, std::size_t bytes) {
  if (!v.is_string()) return {};
  const std::string& s = v.get_ref<const std::string&>();
  const std::size_t keep = utf8_cut_length(s, bytes);
  return keep == s.size() ? s : s.substr(0, keep) + "...";
}

// What the live `tally top` screen shows of the status in its header: the
// health and its first reason, the outbox depth, each sink's state. Taken
// from status_json() so that there is one definition of "healthy"; small,
// so that it never crowds rows out of the answer.
nlohmann::json agent_summary(const nlohmann::json& status) {
  const nlohmann::json& reasons = status["health"]["reasons"];
  nlohmann::json sinks = nlohmann::json::array();
  for (const auto& k : status["sinks"]) {
    if (sinks.size() == 8) break;  // kept within what top_rows leaves over
    sinks.push_back({{"name", cut_text(k["name"], 64)}, {"state", k["state"]}});
  }
  nlohmann::json outbox = {
      {"pending_batches", status["outbox"].value("pending_batches", std::uint64_t{0})}};
  if (status["outbox"].contains("error")) {
    outbox["error"] = cut_text(status["outbox"]["error"], 256);
  }
  return {{"host", status["host"]},
          {"health", status["health"]["status"]},
          {"reasons", reasons.size()},
          {"first_reason", reasons.empty() ? std::string() : cut_text(reasons[0], 256)},
          {"outbox", std::move(outbox)},
          {"sinks", std::move(sinks)}};
}

}  // namespace

nlohmann::json Daemon::top_json(const control::TopRequest& request) {
  const control::TopGrouping by = request.by;
  TopRows top;
  std::uint64_t interval_ns = 0;
  if (last_interval_) {
    interval_ns = last_interval_->host.interval_ns;
    top = top_rows(last_interval_->processes, interval_ns, static_cast<std::size_t>(request.n), by,
                   request.sort);
  }
  nlohmann::json out = {
      {"ts_ns", last_sample_ns_},
      {"interval_s", config_.interval_s},
      {"by", by == control::TopGrouping::process     ? "process"
             : by == control::TopGrouping::cgroup    ? "cgroup"
             : by == control::TopGrouping::container ? "container"
                                                     : "pod"},
      {"sort", control::top_sort_name(request.sort)},
      {by == control::TopGrouping::process ? "processes" : "groups", std::move(top.rows)},
      {"omitted", top.omitted},
      {"agent", agent_summary(status_json())}};
  if (last_interval_) {
    const samples::HostSample& h = last_interval_->host;
    out["host"] = {{"cpu_pct", h.cpu_pct},
                   {"ncpu", h.ncpu},
                   {"processes", h.processes},
                   {"psi_some_pct", samples::percent(h.psi_some_ns, h.interval_ns)},
                   {"steal_pct", samples::host_percent(h.steal_ns, h.interval_ns, h.ncpu)}};
  }
  return out;
}

}  // namespace tally::agent
