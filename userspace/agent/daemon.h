// tallyd's event loop and the wiring of its parts.
//
// Threads and what they own:
//   main thread   io_: signals, the sampling timer, the control socket, the
//                 backend and the sampler (kernel maps, /proc). Never waits
//                 on the disk or the network, so samples are taken on time.
//   store thread  store_io_: Outbox::append (one fsync per interval),
//                 with --stdout printing the lines just committed, and the
//                 status snapshot (status_snapshot.h) after each append and
//                 each delivery attempt.
//   sink threads  one per sink, owned by its Shipper: HTTP and outbox acks.
// The outbox locks itself. Work crosses threads only by post(); results come
// back to the main thread the same way. Deadlines are absolute
// (start + k * interval), so intervals do not drift, and between intervals
// every thread sleeps.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "accounting/backend.h"
#include "accounting/sampler.h"
#include "agent/agent_config.h"
#include "agent/agent_options.h"
#include "agent/book_balance.h"
#include "agent/control_server.h"
#include "agent/exposition.h"
#include "agent/group_totals.h"
#include "agent/kubelet_pods.h"
#include "agent/privileges.h"
#include "agent/process_totals.h"
#include "agent/prometheus_exporter.h"
#include "agent/status_snapshot.h"
#include "samples/compact_records.h"
#include "shipping/shipper.h"
#include "tally/queue/outbox.h"

namespace tally::agent {

struct DaemonParts {
  AgentCommandLine command_line;  // to re-read the config on SIGHUP
  AgentConfig config;
  std::string host;
  std::string host_id;  // /etc/machine-id, for OTLP's host.id; may be empty
  std::unique_ptr<accounting::Backend> backend;
  std::unique_ptr<queue::Outbox> outbox;
};

class Daemon {
 public:
  explicit Daemon(DaemonParts parts);
  ~Daemon();

  // Runs until SIGINT/SIGTERM (or one interval with --once) and the final
  // flush. Returns the process exit code.
  int run();

 private:
  // Sampling (main thread).
  void do_wait_interval();
  void take_sample(bool final);
  // Storing (store thread), then back on the main thread.
  void store(const samples::IntervalSamples& samples, bool final);
  void on_stored(bool ok, bool final);
  // store() threw (store thread): counted as an append failure.
  void store_failed(const std::string& what, bool final);
  // Takes a status snapshot (store thread) and hands it to the main thread.
  StatusSnapshot take_snapshot();
  void publish_snapshot();
  // From any thread: a snapshot is wanted soon. Requests made while one is
  // queued are folded into it.
  void request_snapshot();

  // Signals and shutdown (main thread).
  void do_wait_signal();
  void reload_config();
  void begin_shutdown();
  // Forms every staged sample into batches (store thread), then has every
  // shipper send all it has, retry times ignored, until the outbox is empty
  // or the deadline passes; done(drained) runs on the main thread.
  void ship_everything(std::chrono::steady_clock::time_point deadline,
                       std::function<void(bool drained)> done);
  void do_wait_drained(std::chrono::steady_clock::time_point deadline,
                       std::function<void(bool drained)> done);
  void finish();

  // Control socket (main thread).
  void handle_request(const control::Request& request, ControlServer::Respond respond);
  nlohmann::json status_json();
  // The parts of status_json(); each adds the health rules it knows to degraded.
  nlohmann::json backend_status() const;
  nlohmann::json sampling_status(std::vector<std::string>& degraded) const;
  void service_status(nlohmann::json& s) const;  // control socket, exporter
  nlohmann::json self_status(std::vector<std::string>& degraded) const;
  nlohmann::json top_json(const control::TopRequest& request);
  void flush(std::chrono::seconds timeout, ControlServer::Respond respond);

  Status make_shippers();
  Status start_exporter();
  // The /metrics page (main thread): totals and cached health, no I/O.
  std::string render_metrics();
  std::uint64_t batches_sent() const;

  DaemonParts parts_;
  AgentConfig& config_;
  boost::asio::io_context io_;
  boost::asio::signal_set signals_;
  boost::asio::steady_timer timer_;
  std::chrono::steady_clock::time_point next_deadline_;
  accounting::Sampler sampler_;
  ControlServer control_;

  boost::asio::io_context store_io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      store_work_;
  std::thread store_thread_;
  // Store thread only: what the outbox's dictionary holds of the processes.
  samples::CompactEncoder encoder_;

  std::vector<std::unique_ptr<shipping::Shipper>> shippers_;

  // Prometheus exporter (main thread), when --prometheus-listen is given.
  ProcessTotals totals_;
  std::optional<GroupTotals> group_totals_;  // with the exporter
  std::optional<PrometheusExporter> exporter_;
  std::unique_ptr<KubeletPods> kubelet_;  // with kubernetes = true

  // The latest status snapshot (main thread); never null once run() starts.
  std::shared_ptr<const StatusSnapshot> snapshot_;
  std::atomic<bool> snapshot_requested_{false};

  // State for `tally status` and `tally top` (main thread).
  std::uint64_t started_realtime_ns_;
  std::uint64_t started_mono_ns_;
  std::uint64_t last_sample_ns_ = 0;
  std::uint64_t intervals_ = 0;
  std::uint64_t dropped_total_ = 0;
  std::deque<std::uint64_t> recent_drops_;  // per interval, last 10
  std::deque<IntervalBooks> recent_books_;  // per interval, last 10
  // The last interval sampled; the store thread holds it while it encodes.
  std::shared_ptr<const samples::IntervalSamples> last_interval_;
  // Written by the store thread, read by the main thread after a post().
  std::uint64_t samples_committed_ = 0;
  std::uint64_t append_failures_ = 0;
  std::string last_append_error_;
  bool append_failing_ = false;

  // Handlers that threw, on any thread (run_until_stopped, store_failed).
  std::atomic<std::uint64_t> internal_errors_{0};
  // Set once in run(), before other threads start; read-only after.
  std::optional<PrivilegeReport> privileges_;

  bool stopping_ = false;
  bool finished_ = false;
  int exit_code_ = 0;
};

}  // namespace tally::agent
