// Everything tallyd can be told, with production defaults. Filled from the
// config file (config_file.h), then from flags (agent_options.h), which win.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "accounting/bpf_loader.h"  // AttachMode

namespace tally::agent {

using accounting::AttachMode;

// One destination for batches. Each sink has its own delivery state in the
// outbox, keyed by name, so a name must stay stable across restarts.
struct SinkConfig {
  std::string name = "default";
  std::string format = "native";  // native | influx | otlp | remote_write
  std::string url;
  std::string token_file;  // file holding a bearer token; never the token itself
  std::string ca_file;     // extra CA bundle for https; verification is always on
  std::uint32_t connect_timeout_s = 5;
  std::uint32_t timeout_s = 30;
  std::uint32_t backoff_base_ms = 1000;
  std::uint32_t backoff_cap_s = 300;
  int gzip_level = 6;
  // format = "influx": the database (?db=, InfluxDB 1.x; VictoriaMetrics
  // turns it into a db label) and the timestamp precision (ns, us, ms, s).
  std::string database;
  std::string precision = "ns";
  // format = "influx" or "otlp": send the command line (off: it can hold
  // secrets, and the OpenTelemetry conventions say not to by default).
  bool cmdline = false;
  // Time-series formats (influx, otlp, remote_write): every process, or the
  // top ones plus the exact remainder (shipping/interval_rollup.h).
  std::string processes = "all";
  std::uint32_t top_n = 20;
  double min_cpu_pct = 0;
  std::uint32_t max_groups = 50;
  // format = "remote_write": HTTP basic auth (the password in a file).
  std::string username;
  std::string password_file;

  bool operator==(const SinkConfig&) const = default;
};

// A [[group]] table: processes whose `field` (comm, cmdline, cgroup)
// matches `pattern` (RE2) are in group `name`; the first match wins.
struct GroupConfig {
  std::string name;
  std::string field;
  std::string pattern;
  bool operator==(const GroupConfig&) const = default;
};

struct AgentConfig {
  // [agent]
  std::uint32_t interval_s = 60;
  bool include_idle = false;
  std::string backend = "auto";  // auto | bpf | procfs
  AttachMode attach = AttachMode::automatic;
  std::string log_level = "info";
  std::string socket_path = "/run/tally/tally.sock";
  std::string socket_group;  // set: socket is 0660 for this group
  std::uint32_t shutdown_timeout_s = 5;
  std::uint32_t max_cmdline_bytes = 4096;  // longer command lines are cut and marked
  bool drop_privileges = true;             // after start-up: privileges.h
  bool cgroup_lines = true;                // a line per busy cgroup (accounting/cgroup_lines.h)
  // [bpf]
  std::uint32_t slots_per_cpu = 1024;
  std::uint32_t max_processes = 16384;
  std::uint32_t exec_cache = 4096;
  bool run_queue_wait = true;  // per-process run-queue wait (tp_btf only)
  bool kubernetes = false;     // pod names from the kubelet
  // [kubelet]: agent/kubelet_pods.h
  std::string kubelet_url = "https://127.0.0.1:10250/pods";
  std::string kubelet_token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string kubelet_ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  bool kubelet_tls_verify = true;
  // [outbox]
  std::string outbox_path = "/var/lib/tally/outbox.db";
  std::uint64_t outbox_cap_mib = 256;
  std::uint32_t batch_max_samples = 10000;
  std::uint64_t batch_max_kib = 4096;
  std::uint32_t batch_max_age_s = 0;  // 0: a batch per interval
  // [[sink]]
  std::vector<SinkConfig> sinks;
  // [[group]]: rollups every time-series sink and /metrics ship
  std::vector<GroupConfig> groups;
  // [prometheus]
  std::string prometheus_listen;  // "IP:PORT"; empty: no exporter
  std::uint32_t prometheus_top = 500;
  std::uint64_t prometheus_min_cpu_ms = 0;

  // Command-line only.
  bool to_stdout = false;
  bool once = false;

  bool operator==(const AgentConfig&) const = default;
};

const char* attach_mode_name(AttachMode mode);

}  // namespace tally::agent
