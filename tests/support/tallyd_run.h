// Test helper: a real tallyd (real BPF) whose JSON lines are collected.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "subprocess.h"
#include "temp_dir.h"

namespace tally::test {

// Why BPF tests cannot run here, or "" if they can. These tests must run on
// any machine that allows BPF; they skip only where it is truly absent.
inline std::string bpf_unavailable_reason() {
  if (geteuid() != 0) return "not root: loading BPF programs needs CAP_BPF/CAP_SYS_ADMIN";
  if (!std::filesystem::exists("/sys/kernel/btf/vmlinux")) {
    return "kernel has no BTF (/sys/kernel/btf/vmlinux)";
  }
  return {};
}

#define TALLY_REQUIRE_BPF()                                              \
  do {                                                                   \
    const std::string reason_ = ::tally::test::bpf_unavailable_reason(); \
    if (!reason_.empty()) GTEST_SKIP() << reason_;                       \
  } while (0)

class TallydRun {
 public:
  // Its outbox and control socket live in a directory of its own: a test
  // must not touch /var/lib/tally or /run/tally of the machine it runs on
  // (nor see what an earlier run left there).
  explicit TallydRun(std::vector<std::string> extra_args) {
    std::vector<std::string> argv{TALLYD_PATH, "--stdout"};
    const auto given = [&](const char* flag) {
      return std::find(extra_args.begin(), extra_args.end(), flag) != extra_args.end();
    };
    if (!given("--outbox")) argv.insert(argv.end(), {"--outbox", dir_ / "outbox.db"});
    if (!given("--socket")) argv.insert(argv.end(), {"--socket", dir_ / "tally.sock"});
    for (auto& a : extra_args) argv.push_back(std::move(a));
    proc_ = std::make_unique<Subprocess>(std::move(argv));
  }

  // Waits for the start-up line that says which backend is counting.
  bool wait_ready(const std::string& backend = "backend bpf") {
    return proc_->wait_for_stderr(backend, std::chrono::seconds(30)).has_value();
  }

  // SIGTERM: tallyd takes a final sample and exits 0.
  int stop() {
    proc_->signal(SIGTERM);
    auto code = proc_->wait(std::chrono::seconds(30));
    proc_->join_output();
    return code.value_or(-1);
  }

  Subprocess& process() { return *proc_; }
  const TempDir& dir() const { return dir_; }

  std::vector<nlohmann::json> samples(const std::string& kind) const {
    std::vector<nlohmann::json> out;
    for (const auto& line : proc_->lines()) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded() && j.value("kind", "") == kind) out.push_back(std::move(j));
    }
    return out;
  }

  std::vector<nlohmann::json> process_samples(std::uint32_t pid) const {
    std::vector<nlohmann::json> out;
    for (auto& j : samples("process")) {
      if (j["pid"].get<std::uint32_t>() == pid) out.push_back(j);
    }
    return out;
  }

  std::uint64_t total_cpu_ns(std::uint32_t pid) const {
    std::uint64_t sum = 0;
    for (auto& j : process_samples(pid)) sum += j["cpu_ns"].get<std::uint64_t>();
    return sum;
  }

 private:
  TempDir dir_;  // before proc_: outlives the process
  std::unique_ptr<Subprocess> proc_;
};

// Runs the burner to completion and returns its JSON report.
inline nlohmann::json run_burner(std::vector<std::string> args) {
  std::vector<std::string> argv{BURNER_PATH};
  for (auto& a : args) argv.push_back(std::move(a));
  RunResult r = run(std::move(argv), std::chrono::minutes(2));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "burner printed: " << r.out;
  return j;
}

}  // namespace tally::test
