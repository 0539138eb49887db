#include "agent_options.h"

#include <cstdio>

#include <CLI/CLI.hpp>

namespace tally::agent {

namespace {
const CLI::Validator kPowerOfTwo(
    [](std::string& value) -> std::string {
      unsigned long v = std::stoul(value);
      if (v == 0 || (v & (v - 1)) != 0) return "must be a power of two (64 to 65536)";
      return {};
    },
    "POWER_OF_TWO");
}  // namespace

AgentCommandLine parse_agent_command_line(int argc, char** argv) {
  AgentOptions o;
  CLI::App app{
      "tallyd: counts CPU time per process with eBPF and reports it every interval.\n\n"
      "Examples:\n"
      "  tallyd --stdout --interval 1          print samples every second\n"
      "  tallyd --once --stdout --backend procfs   one interval from /proc polling\n",
      "tallyd"};
  app.get_formatter()->column_width(34);
  app.add_option("--interval", o.interval_s, "Seconds between samples (1 to 86400)")
      ->check(CLI::Range(1u, 86400u))
      ->capture_default_str();
  app.add_flag("--stdout", o.to_stdout, "Print each interval's samples as JSON lines");
  app.add_flag("--once", o.once, "Sample one interval, then exit");
  app.add_flag("--all", o.include_idle, "Also report live processes that used no CPU");
  app.add_option("--backend", o.backend, "Where CPU time comes from: auto, bpf or procfs")
      ->check(CLI::IsMember({"auto", "bpf", "procfs"}))
      ->capture_default_str();
  std::string attach = "auto";
  app.add_option("--attach", attach, "BPF attach mode: auto, tp_btf or raw_tp")
      ->check(CLI::IsMember({"auto", "tp_btf", "raw_tp"}))
      ->capture_default_str();
  app.add_option("--slots-per-cpu", o.slots_per_cpu,
                 "Per-CPU process slots in the kernel (power of two, 64 to 65536)")
      ->check(CLI::Range(64u, 65536u) & kPowerOfTwo)
      ->capture_default_str();
  app.add_option("--max-processes", o.max_processes,
                 "Kernel map entries for processes (128 to 4194304)")
      ->check(CLI::Range(128u, 4194304u))
      ->capture_default_str();
  app.add_option("--exec-cache", o.exec_cache,
                 "Kernel map entries for exec records (64 to 1048576)")
      ->check(CLI::Range(64u, 1048576u))
      ->capture_default_str();
  app.add_option("--log-level", o.log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::fputs(app.help().c_str(), stdout);
    return {std::nullopt, 0};
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tallyd: %s (see tallyd --help)\n", e.what());
    return {std::nullopt, 2};
  }
  o.attach = attach == "tp_btf"   ? AttachMode::tp_btf
             : attach == "raw_tp" ? AttachMode::raw_tp
                                  : AttachMode::automatic;
  return {o, 0};
}

}  // namespace tally::agent
