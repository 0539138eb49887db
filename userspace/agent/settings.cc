#include "agent/settings.h"

#include <fmt/format.h>

namespace tally::agent {

namespace {

using A = AgentConfig;
using S = SinkConfig;

// A table, not a function: one row per setting, however many there are.
const std::vector<Setting> kSettings{
    // [agent]
    {.table = "agent",
     .key = "interval",
     .flag = "--interval",
     .help = "Seconds between samples",
     .field = &A::interval_s,
     .min = 1,
     .max = 86400},
    {.table = "agent",
     .key = "include_idle",
     .flag = "--all",
     .help = "Also report live processes that used no CPU",
     .field = &A::include_idle},
    {.table = "agent",
     .key = "backend",
     .flag = "--backend",
     .help = "Where CPU time comes from",
     .field = &A::backend,
     .choices = {"auto", "bpf", "procfs"}},
    {.table = "agent",
     .key = "attach",
     .flag = "--attach",
     .help = "BPF attach mode",
     .field = &A::attach,
     .choices = {"auto", "tp_btf", "raw_tp"}},
    {.table = "agent",
     .key = "log_level",
     .flag = "--log-level",
     .help = "What tallyd logs",
     .field = &A::log_level,
     .choices = {"debug", "info", "warning", "error"}},
    {.table = "agent",
     .key = "socket",
     .flag = "--socket",
     .help = "Control socket; only a stale socket there is replaced, and its directory must "
             "be root's",
     .field = &A::socket_path},
    {.table = "agent",
     .key = "socket_group",
     .flag = "--socket-group",
     .help = "Group allowed to use the socket (mode 0660)",
     .field = &A::socket_group},
    {.table = "agent",
     .key = "shutdown_timeout",
     .flag = "--shutdown-timeout",
     .help = "Seconds to ship pending batches on SIGTERM",
     .field = &A::shutdown_timeout_s,
     .min = 0,
     .max = 3600},
    {.table = "agent",
     .key = "max_cmdline_bytes",
     .flag = "--max-cmdline-bytes",
     .help = "Command-line bytes kept per process; longer ones are cut and end in "
             "...[truncated]",
     .field = &A::max_cmdline_bytes,
     .min = 64,
     .max = 1048576},
    {.table = "agent",
     .key = "kubernetes",
     .flag = "--kubernetes",
     .help = "Name each process's pod, namespace and container from the node's kubelet "
             "([kubelet])",
     .field = &A::kubernetes},
    {.table = "agent",
     .key = "cgroup_lines",
     .help = "A line per cgroup with CPU in the interval: its own usage, throttling, pressure "
             "and limit",
     .field = &A::cgroup_lines},
    // The flag is the opposite, --keep-privileges (agent_options.cc).
    {.table = "agent",
     .key = "drop_privileges",
     .help = "After start-up, keep only the capabilities sampling needs",
     .field = &A::drop_privileges},
    // [bpf]
    {.table = "bpf",
     .key = "slots_per_cpu",
     .flag = "--slots-per-cpu",
     .help = "Per-CPU process slots in the kernel",
     .field = &A::slots_per_cpu,
     .min = 64,
     .max = 65536,
     .power_of_two = true},
    {.table = "bpf",
     .key = "max_processes",
     .flag = "--max-processes",
     .help = "Kernel map entries for processes",
     .field = &A::max_processes,
     .min = 128,
     .max = 4194304},
    {.table = "bpf",
     .key = "exec_cache",
     .flag = "--exec-cache",
     .help = "Kernel map entries for exec records",
     .field = &A::exec_cache,
     .min = 64,
     .max = 1048576},
    {.table = "bpf",
     .key = "run_queue_wait",
     .help = "Measure each process's run-queue wait (wait_ns); off saves about a third of a "
             "clock read per context switch",
     .field = &A::run_queue_wait},
    // [outbox]
    {.table = "outbox",
     .key = "path",
     .flag = "--outbox",
     .help = "Outbox database",
     .field = &A::outbox_path},
    {.table = "outbox",
     .key = "cap_mib",
     .flag = "--outbox-cap-mib",
     .help = "Outbox size cap in MiB",
     .field = &A::outbox_cap_mib,
     .min = 1,
     .max = 1048576},
    {.table = "outbox",
     .key = "batch_max_samples",
     .help = "Samples per batch at most",
     .field = &A::batch_max_samples,
     .min = 1,
     .max = 1000000},
    {.table = "outbox",
     .key = "batch_max_kib",
     .help = "KiB per batch at most",
     .field = &A::batch_max_kib,
     .min = 1,
     .max = 65536},
    {.table = "outbox",
     .key = "batch_max_age",
     .flag = "--batch-max-age",
     .help = "Seconds samples may wait to fill a batch (0: a batch per interval)",
     .field = &A::batch_max_age_s,
     .min = 0,
     .max = 86400},
    // [prometheus]
    {.table = "prometheus",
     .key = "listen",
     .flag = "--prometheus-listen",
     .help = "Serve /metrics for Prometheus on IP:PORT (e.g. 127.0.0.1:9464; off by default)",
     .field = &A::prometheus_listen,
     .listen_address = true},
    {.table = "prometheus",
     .key = "top",
     .flag = "--prometheus-top",
     .help = "Processes on /metrics: the N with most CPU",
     .field = &A::prometheus_top,
     .min = 1,
     .max = 100000},
    {.table = "prometheus",
     .key = "min_cpu_ms",
     .flag = "--prometheus-min-cpu-ms",
     .help = "Processes on /metrics: only those with this much CPU, ms",
     .field = &A::prometheus_min_cpu_ms,
     .min = 0,
     .max = 86400000},
    // [kubelet]
    {.table = "kubelet",
     .key = "url",
     .help = "The kubelet's pods API (with kubernetes = true)",
     .field = &A::kubelet_url},
    {.table = "kubelet",
     .key = "token_file",
     .help = "Bearer token for the kubelet: the service account's",
     .field = &A::kubelet_token_file},
    {.table = "kubelet",
     .key = "ca_file",
     .help = "Trust for the kubelet's serving certificate (empty: the system's)",
     .field = &A::kubelet_ca_file},
    {.table = "kubelet",
     .key = "tls_verify",
     .help = "Verify the kubelet's certificate (off only for self-signed kubelet certificates)",
     .field = &A::kubelet_tls_verify},
    // [[sink]]; the flags fill the sink named "default".
    {.table = "sink",
     .key = "name",
     .help = "Stable name: delivery progress is kept under it",
     .field = &S::name},
    {.table = "sink",
     .key = "format",
     .flag = "--format",
     .help = "Protocol of --endpoint: native (tally-collector), influx (InfluxDB line "
             "protocol: VictoriaMetrics, InfluxDB 1.x), otlp (OTLP/HTTP JSON), remote_write "
             "(Prometheus remote write: Prometheus, Mimir, Thanos, VictoriaMetrics)",
     .field = &S::format,
     .choices = {"native", "influx", "otlp", "remote_write"}},
    {.table = "sink",
     .key = "url",
     .flag = "--endpoint",
     .help = "Ship batches to this URL",
     .field = &S::url},
    {.table = "sink",
     .key = "token_file",
     .flag = "--token-file",
     .help = "File with a bearer token for --endpoint",
     .field = &S::token_file},
    {.table = "sink",
     .key = "ca_file",
     .flag = "--ca-file",
     .help = "CA bundle to verify --endpoint's certificate",
     .field = &S::ca_file},
    {.table = "sink",
     .key = "connect_timeout",
     .flag = "--connect-timeout",
     .help = "Seconds to connect",
     .field = &S::connect_timeout_s,
     .min = 1,
     .max = 600},
    {.table = "sink",
     .key = "timeout",
     .flag = "--timeout",
     .help = "Seconds for a whole request",
     .field = &S::timeout_s,
     .min = 1,
     .max = 3600},
    {.table = "sink",
     .key = "backoff_base_ms",
     .flag = "--backoff-base-ms",
     .help = "First retry delay bound, ms",
     .field = &S::backoff_base_ms,
     .min = 1,
     .max = 600000},
    {.table = "sink",
     .key = "backoff_cap",
     .flag = "--backoff-cap",
     .help = "Longest retry delay, s",
     .field = &S::backoff_cap_s,
     .min = 1,
     .max = 86400},
    {.table = "sink",
     .key = "gzip_level",
     .flag = "--gzip-level",
     .help = "gzip level of request bodies",
     .field = &S::gzip_level,
     .min = 0,
     .max = 9},
    {.table = "sink",
     .key = "database",
     .flag = "--database",
     .help = "Database for --format influx (?db=)",
     .field = &S::database},
    {.table = "sink",
     .key = "precision",
     .help = "Timestamp precision for format influx",
     .field = &S::precision,
     .choices = {"ns", "us", "ms", "s"}},
    {.table = "sink",
     .key = "cmdline",
     .help = "Send command lines (format influx or otlp; native always does)",
     .field = &S::cmdline},
    {.table = "sink",
     .key = "processes",
     .flag = "--processes",
     .help = "Time-series sinks: ship every process (all) or the top ones plus the exact "
             "remainder (top)",
     .field = &S::processes,
     .choices = {"all", "top"}},
    {.table = "sink",
     .key = "top_n",
     .flag = "--top-n",
     .help = "With processes = top: processes shipped per interval, by CPU",
     .field = &S::top_n,
     .min = 1,
     .max = 100000},
    {.table = "sink",
     .key = "min_cpu_pct",
     .help = "With processes = top: also ship any process at or above this CPU % (0: off)",
     .field = &S::min_cpu_pct,
     .min = 0,
     .max = 100000},
    {.table = "sink",
     .key = "max_groups",
     .help = "Time-series sinks: groups per dimension (cgroup, comm, group); the rest are summed",
     .field = &S::max_groups,
     .min = 1,
     .max = 100000},
    {.table = "sink",
     .key = "username",
     .help = "HTTP basic auth user (format remote_write; with password_file)",
     .field = &S::username},
    {.table = "sink",
     .key = "password_file",
     .help = "File with the HTTP basic auth password (format remote_write)",
     .field = &S::password_file},
};

}  // namespace

const std::vector<Setting>& settings() { return kSettings; }

const std::vector<std::string_view>& setting_tables() {
  static const std::vector<std::string_view> tables{"agent", "bpf", "outbox", "prometheus",
                                                    "kubelet"};
  return tables;
}

std::string setting_default(const Setting& setting) {
  return std::visit(
      [](auto member) -> std::string {
        static const typename SettingStruct<decltype(member)>::type defaults{};
        const auto& value = defaults.*member;
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, bool>) {
          return value ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return fmt::format("\"{}\"", value);
        } else if constexpr (std::is_same_v<T, AttachMode>) {
          return fmt::format("\"{}\"", attach_mode_name(value));
        } else if constexpr (std::is_same_v<T, double>) {
          return fmt::format("{}", value);
        } else {
          return std::to_string(value);
        }
      },
      setting.field);
}

std::string power_of_two_problem(const Setting& setting, std::uint64_t value) {
  if (value != 0 && (value & (value - 1)) == 0 && value >= setting.min && value <= setting.max) {
    return {};
  }
  return fmt::format("must be a power of two ({} to {})", setting.min, setting.max);
}

AttachMode attach_mode_from_name(std::string_view name) {
  if (name == "tp_btf") return AttachMode::tp_btf;
  if (name == "raw_tp") return AttachMode::raw_tp;
  return AttachMode::automatic;
}

}  // namespace tally::agent
