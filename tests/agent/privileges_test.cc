// tallyd keeps only what its steady state needs: once its BPF programs are
// attached, a bug in a request handler must not hand a local user root's
// whole power. Checked on the real process, every thread, through /proc.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "agent/privileges.h"
#include "tally_cli.h"
#include "tallyd_run.h"

namespace tally::test {
namespace {

using namespace std::chrono_literals;

// The "Key:\tvalue" lines of a /proc/.../status file.
std::map<std::string, std::string> status_fields(const std::filesystem::path& file) {
  std::map<std::string, std::string> fields;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    fields[line.substr(0, colon)] = value;
  }
  return fields;
}

std::uint64_t hex(const std::string& text) { return std::stoull(text, nullptr, 16); }

constexpr std::uint64_t bit(int cap) { return std::uint64_t{1} << cap; }
// CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_BPF.
constexpr std::uint64_t kSteadyStateCaps = bit(2) | bit(19) | bit(39);

std::vector<std::filesystem::path> thread_status_files(pid_t pid) {
  std::vector<std::filesystem::path> files;
  const auto dir = std::filesystem::path("/proc") / std::to_string(pid) / "task";
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    files.push_back(entry.path() / "status");
  }
  return files;
}

// Whether this kernel knows CAP_BPF (5.8+); before it, CAP_SYS_ADMIN is
// kept instead.
bool kernel_has_cap_bpf() {
  std::ifstream in("/proc/sys/kernel/cap_last_cap");
  int last = 0;
  in >> last;
  return last >= 39;
}

TEST(Privileges, AfterStartUpEveryThreadHoldsOnlyTheCapabilitiesSamplingNeedsUnderSeccomp) {
  TALLY_REQUIRE_BPF();
  if (!kernel_has_cap_bpf()) GTEST_SKIP() << "kernel before 5.8: no CAP_BPF to keep";
  TallydRun agent({"--interval", "1"});
  ASSERT_TRUE(agent.wait_ready("privileges for the steady state")) << agent.process().stderr_text();
  ASSERT_TRUE(agent.process().wait_for_stderr("control socket", 30s).has_value());
  const std::string socket = agent.dir() / "tally.sock";
  // The shipping and store threads exist by now: every one must be confined.
  const auto files = thread_status_files(agent.process().pid());
  ASSERT_GE(files.size(), 2u);
  for (const auto& file : files) {
    auto s = status_fields(file);
    SCOPED_TRACE(file.string());
    EXPECT_EQ(hex(s["CapEff"]), kSteadyStateCaps);
    EXPECT_EQ(hex(s["CapPrm"]), kSteadyStateCaps);
    EXPECT_EQ(hex(s["CapInh"]), 0u);
    EXPECT_EQ(hex(s["CapAmb"]), 0u);
    // The bounding set no longer holds, say, CAP_SYS_ADMIN or CAP_SETUID:
    // nothing tallyd could execute would get them back.
    EXPECT_EQ(hex(s["CapBnd"]) & ~kSteadyStateCaps, 0u);
    EXPECT_EQ(s["NoNewPrivs"], "1");
    EXPECT_EQ(s["Seccomp"], "2");  // filter mode
  }

  // Confined, it still does its job: samples keep coming, and it answers.
  const std::size_t before = agent.samples("host").size();
  for (int i = 0; i < 100 && agent.samples("host").size() < before + 2; ++i) {
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_GE(agent.samples("host").size(), before + 2);
  const auto status = tally_status_json(socket);
  const auto& privileges = status["self"]["privileges"];
  EXPECT_EQ(privileges["dropped"], true);
  EXPECT_EQ(privileges["capabilities"],
            nlohmann::json({"CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE", "CAP_BPF"}));
  EXPECT_EQ(privileges["no_new_privs"], true);
  EXPECT_GT(privileges["seccomp_syscalls"].get<int>(), 100);
  EXPECT_TRUE(privileges["problems"].empty()) << privileges.dump();
  const auto text = run_tally(socket, {"status"}, 30s);
  EXPECT_NE(text.out.find("privileges: CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_BPF"),
            std::string::npos)
      << text.out;
  // SIGHUP re-reads the config (open, read under the filter) and SIGTERM
  // still ends in a final sample and exit 0.
  agent.process().signal(SIGHUP);
  EXPECT_TRUE(agent.process().wait_for_stderr("config reloaded", 30s).has_value());
  EXPECT_EQ(agent.stop(), 0) << agent.process().stderr_text();
}

TEST(Privileges, KeepPrivilegesLeavesEverythingAsStarted) {
  TALLY_REQUIRE_BPF();
  const auto mine = status_fields("/proc/self/status");
  TallydRun agent({"--interval", "1", "--keep-privileges"});
  ASSERT_TRUE(agent.wait_ready("control socket")) << agent.process().stderr_text();
  for (const auto& file : thread_status_files(agent.process().pid())) {
    auto s = status_fields(file);
    SCOPED_TRACE(file.string());
    EXPECT_EQ(s["CapEff"], mine.at("CapEff"));
    EXPECT_EQ(s["CapBnd"], mine.at("CapBnd"));
    EXPECT_EQ(s["Seccomp"], "0");
  }
  const auto status = tally_status_json(agent.dir() / "tally.sock");
  EXPECT_EQ(status["self"]["privileges"]["dropped"], false);
  EXPECT_EQ(agent.stop(), 0);
}

TEST(Privileges, TheSystemCallListHoldsNothingThatEscalatesOrEscapes) {
  const auto& list = agent::steady_state_syscalls();
  for (const char* forbidden :
       {"execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "mount", "setuid",
        "setresuid", "capset", "init_module", "finit_module", "kexec_load", "keyctl", "chroot",
        "setns", "unshare", "pivot_root", "reboot"}) {
    for (const char* allowed : list) EXPECT_STRNE(allowed, forbidden);
  }
}

}  // namespace
}  // namespace tally::test
