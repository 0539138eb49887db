// tallyd: read flags and config, choose a backend, then hand over to the
// daemon's event loop.
#include <unistd.h>

#include <memory>

#include "agent_options.h"
#include "bpf_backend.h"
#include "daemon.h"
#include "procfs_backend.h"
#include "tally/log.h"

namespace {

using tally::accounting::Backend;
using tally::agent::AgentConfig;

tally::log::Level parse_level(const std::string& s) {
  if (s == "debug") return tally::log::Level::debug;
  if (s == "warning") return tally::log::Level::warning;
  if (s == "error") return tally::log::Level::error;
  return tally::log::Level::info;
}

std::unique_ptr<Backend> make_backend(const AgentConfig& c) {
  if (c.backend != "procfs") {
    tally::accounting::BpfLoadOptions bpf;
    bpf.mode = c.attach;
    bpf.slots_per_cpu = c.slots_per_cpu;
    bpf.max_processes = c.max_processes;
    bpf.exec_cache = c.exec_cache;
    auto backend = tally::accounting::BpfBackend::create(bpf);
    if (backend.ok()) {
      auto info = (*backend)->info();
      tally::log::info("backend bpf, attach mode {}{}", info.attach_mode,
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
  tally::log::set_level(parse_level(config->log_level));

  auto backend = make_backend(*config);
  if (!backend) return 1;
  tally::agent::Daemon daemon(*config, std::move(backend), host_name());
  return daemon.run();
}
