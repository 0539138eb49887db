// Sample lines as tallyd commits them (userspace/samples/json_line.cc), for
// the encoder tests.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "tally/queue/batch.h"

namespace tally::test {

struct ProcessLine {
  std::uint64_t ts_ns = 1700000060000000000ULL;
  std::uint64_t interval_ns = 60000000000ULL;
  std::string host = "web-1";
  std::uint32_t pid = 812;
  std::uint64_t start_time_ns = 1699990000000000000ULL;
  std::string comm = "nginx";
  std::string cmdline = "nginx: worker process";
  std::string cgroup = "/system.slice/nginx.service";
  std::uint64_t cpu_ns = 250000000;
  double cpu_pct = 0.42;
  std::uint64_t rss_bytes = 10485760;
  bool exited = false;
  std::uint64_t wait_ns = 120000000;  // 0.2% of the interval
  // A pod's process when set.
  std::string pod, pod_namespace, container, container_id;

  std::string json() const {
    nlohmann::ordered_json j;
    j["kind"] = "process";
    j["ts_ns"] = ts_ns;
    j["interval_ns"] = interval_ns;
    j["host"] = host;
    j["pid"] = pid;
    j["start_time_ns"] = start_time_ns;
    j["comm"] = comm;
    j["cmdline"] = cmdline;
    j["cgroup"] = cgroup;
    if (!container_id.empty()) {
      j["container_id"] = container_id;
      j["container_runtime"] = "containerd";
    }
    if (!pod.empty()) {
      j["pod"] = pod;
      j["namespace"] = pod_namespace;
      j["container"] = container;
    }
    j["cpu_ns"] = cpu_ns;
    j["cpu_pct"] = cpu_pct;
    j["wait_ns"] = wait_ns;
    j["wait_pct"] = 0.2;
    j["rss_bytes"] = rss_bytes;
    j["exited"] = exited;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
};

inline std::string host_line(std::uint64_t ts_ns = 1700000060000000000ULL) {
  return R"({"kind":"host","ts_ns":)" + std::to_string(ts_ns) +
         R"(,"interval_ns":60000000000,"host":"web-1","ncpu":4,"busy_ns":12000000000,)"
         R"("cpu_pct":5.0,"processes":12,"dropped_updates":3,"steal_ns":5000000,)"
         R"("psi_some_ns":7000000,"psi_full_ns":0,"unaccounted_ns":-2000,"bpf_run_ns":0})";
}

// A container's cgroup line with every figure; `bare`: a host that offers
// no throttling or pressure figures.
inline std::string cgroup_line(bool bare = false) {
  std::string line =
      R"({"kind":"cgroup","ts_ns":1700000060000000000,"interval_ns":60000000000,"host":"web-1",)"
      R"("cgroup":"/kubepods/burstable/pod1/abc","container_id":"abc","container_runtime":"cri",)"
      R"("pod_uid":"pod1","pod":"web-0","namespace":"shop","container":"nginx","processes":2,)"
      R"("process_cpu_ns":2990000000,"cpu_ns":3000000000,"cpu_pct":5.0)";
  if (!bare) {
    line += R"(,"nr_periods":600,"nr_throttled":45,"throttled_ns":2500000000,)"
            R"("psi_some_ns":4000000000,"psi_full_ns":1000000000)";
  }
  return line + R"(,"limit_cpus":0.5})";
}

inline queue::Batch batch_of(std::uint64_t seq, const std::vector<std::string>& lines) {
  queue::Batch b;
  b.seq = seq;
  b.kind = queue::Batch::Kind::samples;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (i) b.payload += '\n';
    b.payload += lines[i];
  }
  b.sample_count = static_cast<std::uint32_t>(lines.size());
  return b;
}

}  // namespace tally::test
