#include "agent/restart_needed.h"

#include <tuple>

namespace tally::agent {

namespace {

// Each group of settings a restart applies, named as the operator sees it.
struct Group {
  const char* name;
  bool (*differs)(const AgentConfig&, const AgentConfig&);
};

constexpr Group kGroups[] = {
    {"backend",
     [](const AgentConfig& a, const AgentConfig& b) {
       return std::tie(a.backend, a.attach) != std::tie(b.backend, b.attach);
     }},
    {"[bpf]",
     [](const AgentConfig& a, const AgentConfig& b) {
       return std::tie(a.slots_per_cpu, a.max_processes, a.exec_cache, a.run_queue_wait) !=
              std::tie(b.slots_per_cpu, b.max_processes, b.exec_cache, b.run_queue_wait);
     }},
    {"[outbox]",
     [](const AgentConfig& a, const AgentConfig& b) {
       return std::tie(a.outbox_path, a.outbox_cap_mib, a.batch_max_samples, a.batch_max_kib,
                       a.batch_max_age_s) != std::tie(b.outbox_path, b.outbox_cap_mib,
                                                      b.batch_max_samples, b.batch_max_kib,
                                                      b.batch_max_age_s);
     }},
    {"cgroup_lines",
     [](const AgentConfig& a, const AgentConfig& b) { return a.cgroup_lines != b.cgroup_lines; }},
    {"include_idle",
     [](const AgentConfig& a, const AgentConfig& b) { return a.include_idle != b.include_idle; }},
    {"max_cmdline_bytes",
     [](const AgentConfig& a, const AgentConfig& b) {
       return a.max_cmdline_bytes != b.max_cmdline_bytes;
     }},
    {"drop_privileges",
     [](const AgentConfig& a, const AgentConfig& b) {
       return a.drop_privileges != b.drop_privileges;
     }},
    {"socket",
     [](const AgentConfig& a, const AgentConfig& b) {
       return std::tie(a.socket_path, a.socket_group) != std::tie(b.socket_path, b.socket_group);
     }},
    {"sinks", [](const AgentConfig& a, const AgentConfig& b) { return a.sinks != b.sinks; }},
    {"groups", [](const AgentConfig& a, const AgentConfig& b) { return a.groups != b.groups; }},
    {"[prometheus]",
     [](const AgentConfig& a, const AgentConfig& b) {
       return std::tie(a.prometheus_listen, a.prometheus_top, a.prometheus_min_cpu_ms) !=
              std::tie(b.prometheus_listen, b.prometheus_top, b.prometheus_min_cpu_ms);
     }},
    {"kubernetes",
     [](const AgentConfig& a, const AgentConfig& b) {
       return std::tie(a.kubernetes, a.kubelet_url, a.kubelet_token_file, a.kubelet_ca_file,
                       a.kubelet_tls_verify) != std::tie(b.kubernetes, b.kubelet_url,
                                                         b.kubelet_token_file, b.kubelet_ca_file,
                                                         b.kubelet_tls_verify);
     }},
};

}  // namespace

AgentConfig reloaded(const AgentConfig& running, const AgentConfig& next) {
  AgentConfig applied = running;
  applied.interval_s = next.interval_s;
  applied.log_level = next.log_level;
  applied.shutdown_timeout_s = next.shutdown_timeout_s;
  return applied;
}

std::vector<std::string> restart_needed(const AgentConfig& running, const AgentConfig& next) {
  std::vector<std::string> names;
  // What would still differ once the in-place settings are applied.
  if (reloaded(running, next) == next) return names;
  for (const Group& g : kGroups) {
    if (g.differs(running, next)) names.emplace_back(g.name);
  }
  if (names.empty()) names.emplace_back("other settings");
  return names;
}

}  // namespace tally::agent
