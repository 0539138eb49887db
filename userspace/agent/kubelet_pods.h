// Pod names, namespaces and container names from the kubelet of this node.
//
// The cgroup path gives a process's pod UID and container id
// (accounting/container_ref.h); the names people use are in the kubelet's
// /pods API (a PodList, as the API server serves it, of this node's pods),
// on the node itself, so a DaemonSet asks it rather than the API server:
// no cluster-wide watch, and the answer is this node's pods only.
//
// The list is fetched on a thread of its own and kept by pod UID: again
// every `refresh` and soon after a sample names a pod it does not hold (a
// pod that just started), at most once per `miss_gap`. The sampler never
// waits for it. A failed fetch is counted and logged (at most once per
// error), the previous list is kept, and samples go out with ids only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "samples/sample.h"
#include "tally/result.h"

namespace tally::agent {

struct KubeletOptions {
  std::string url = "https://127.0.0.1:10250/pods";
  // The service account's token, read again at every fetch: bound tokens
  // are rotated.
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  // Trust for the kubelet's serving certificate; empty: the system's.
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  bool tls_verify = true;
  std::chrono::milliseconds refresh{std::chrono::minutes(5)};
  std::chrono::milliseconds miss_gap{std::chrono::seconds(10)};
  std::chrono::milliseconds timeout{std::chrono::seconds(10)};
};

struct PodEntry {
  std::string name;
  std::string pod_namespace;
  std::unordered_map<std::string, std::string> containers;  // container id → name
};
using PodIndex = std::unordered_map<std::string, PodEntry>;  // by pod UID

// The pods of a PodList (JSON). Container ids lose their "<runtime>://"
// prefix, so that they compare with the ids in cgroup paths. An error says
// what is wrong with the document; a pod without metadata.uid is skipped.
Result<PodIndex> parse_pod_list(std::string_view json);

// The longest /pods answer read: a node's 110 pods take about 1 MiB.
inline constexpr std::size_t kMaxPodListBytes = 32u << 20;

class KubeletPods {
 public:
  explicit KubeletPods(KubeletOptions options);
  ~KubeletPods();
  KubeletPods(const KubeletPods&) = delete;
  KubeletPods& operator=(const KubeletPods&) = delete;

  // Starts the fetching thread (the first fetch right away).
  void start();

  // Sets pod, namespace and container on each process whose pod UID the
  // list holds; for one it does not hold, asks for a fetch.
  void annotate(std::vector<samples::ProcessSample>& processes);
  // The interval's process lines, and its cgroup lines of the same pods.
  void annotate(samples::IntervalSamples& interval);

  struct Stats {
    std::uint64_t fetches = 0;
    std::uint64_t failures = 0;
    std::uint64_t failing_streak = 0;  // failures since the last success
    std::uint64_t misses = 0;          // processes whose pod the list lacked
    std::size_t pods = 0;
    std::string last_error;
    std::uint64_t last_success_ns = 0;  // realtime
  };
  Stats stats() const;

 private:
  void run();
  Result<PodIndex> fetch() const;

  const KubeletOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool miss_ = false;
  std::shared_ptr<const PodIndex> pods_;
  Stats stats_;
  std::thread thread_;
};

}  // namespace tally::agent
