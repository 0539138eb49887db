// tallyd: read flags and config, choose a backend, then hand over to the
// daemon's event loop.
#include <malloc.h>
#include <unistd.h>

#include <memory>

#include "accounting/bpf_backend.h"
#include "accounting/procfs_backend.h"
#include "agent/agent_options.h"
#include "agent/daemon.h"
#include "agent/machine_id.h"
#include "shipping/http_client.h"
#include "tally/log.h"
#include "tally/queue/outbox.h"
#include "tally/time_util.h"

namespace {

using tally::accounting::Backend;
using tally::agent::AgentConfig;

std::unique_ptr<Backend> make_backend(const AgentConfig& c) {
  if (c.backend != "procfs") {
    tally::accounting::BpfLoadOptions bpf;
    bpf.mode = c.attach;
    bpf.slots_per_cpu = c.slots_per_cpu;
    bpf.max_processes = c.max_processes;
    bpf.exec_cache = c.exec_cache;
    bpf.run_queue_wait = c.run_queue_wait;
    auto backend = tally::accounting::BpfBackend::create(bpf);
    if (backend.ok()) {
      auto info = (*backend)->info();
      tally::log::info(
          "backend bpf, attach mode {}{}", info.attach_mode,
          info.attach_mode == "raw_tp" && c.attach != tally::accounting::AttachMode::raw_tp
              ? " (tp_btf unavailable)"
              : "");
      return std::move(backend).value();
    }
    if (c.backend == "bpf") {
      tally::log::error("{}", backend.error().message());
      return nullptr;
    }
    tally::log::warning("BPF unavailable, polling /proc instead (misses short-lived processes): {}",
                        backend.error().message());
  }
  tally::log::info("backend procfs");
  return std::make_unique<tally::accounting::ProcfsBackend>();
}

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  tally::log::set_program("tallyd");
  // A handful of threads that mostly sleep: one malloc arena each would
  // keep each thread's freed memory resident on its own.
  mallopt(M_ARENA_MAX, 2);
  auto cmd = tally::agent::parse_agent_command_line(argc, argv);
  if (!cmd.proceed) return cmd.exit_code;
  auto config = tally::agent::resolve_config(cmd);
  if (!config.ok()) {
    tally::log::error("{}", config.error().message());
    return 2;
  }
  if (cmd.check_config) {
    std::printf("%s: ok\n", cmd.config_path.c_str());
    return 0;
  }
  tally::log::set_level(tally::log::parse_level(config->log_level));

  tally::queue::OutboxOptions outbox_options;
  outbox_options.path = config->outbox_path;
  outbox_options.cap_bytes = config->outbox_cap_mib << 20;
  outbox_options.batch.max_samples = config->batch_max_samples;
  outbox_options.batch.max_bytes = config->batch_max_kib << 10;
  outbox_options.batch.max_age_ns = std::uint64_t{config->batch_max_age_s} * 1'000'000'000ULL;
  // Without a sink, batches wait under the name the --endpoint sink will
  // use, so configuring one later ships the backlog.
  outbox_options.sinks.clear();
  for (const auto& sink : config->sinks) outbox_options.sinks.push_back(sink.name);
  if (outbox_options.sinks.empty()) outbox_options.sinks.push_back("default");
  auto outbox = tally::queue::Outbox::open(outbox_options, tally::realtime_ns());
  if (!outbox.ok()) {
    tally::log::error("{}", outbox.error().message());
    return 1;
  }

  auto backend = make_backend(*config);
  if (!backend) return 1;
  tally::shipping::http_global_init();

  tally::agent::DaemonParts parts;
  parts.command_line = std::move(cmd);
  parts.config = std::move(config).value();
  parts.host = host_name();
  parts.host_id = tally::agent::read_machine_id();
  parts.backend = std::move(backend);
  parts.outbox = std::move(outbox).value();
  tally::agent::Daemon daemon(std::move(parts));
  return daemon.run();
}
