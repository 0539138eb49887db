// `tally top -n 10000` on a host whose processes have long command lines:
// the answer would pass the 1 MiB a response line may hold, and the CLI
// refused all of it. tallyd now sends what fits and counts the rest.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tally_cli.h"
#include "tallyd_run.h"

namespace tally::test {
namespace {

using namespace std::chrono_literals;

// Idle processes with 4 KiB of arguments each ("sleep 120 0 0 0 ...": sleep
// adds its arguments up), killed at the end of the test.
class Sleepers {
 public:
  explicit Sleepers(int count) {
    std::vector<char*> argv{const_cast<char*>("sleep"), const_cast<char*>("120")};
    argv.insert(argv.end(), 2100, const_cast<char*>("0"));
    argv.push_back(nullptr);
    for (int i = 0; i < count; ++i) {
      const pid_t pid = fork();
      if (pid == 0) {
        execv("/bin/sleep", argv.data());
        _exit(127);
      }
      if (pid > 0) pids_.push_back(pid);
    }
  }
  ~Sleepers() {
    for (pid_t pid : pids_) kill(pid, SIGKILL);
    for (pid_t pid : pids_) waitpid(pid, nullptr, 0);
  }
  std::size_t size() const { return pids_.size(); }

 private:
  std::vector<pid_t> pids_;
};

TEST(CliTop, AnAnswerTooLargeForOneResponseIsCutAndSaysHowManyRowsWereLeftOut) {
  TALLY_REQUIRE_BPF();
  Sleepers sleepers(320);
  ASSERT_EQ(sleepers.size(), 320u);
  // --all: idle processes are listed too, so all 320 are in every interval.
  TallydRun agent({"--interval", "1", "--all"});
  ASSERT_TRUE(agent.wait_ready("control socket")) << agent.process().stderr_text();
  const std::string socket = agent.dir() / "tally.sock";

  nlohmann::json top;
  for (int i = 0; i < 100; ++i) {
    auto r = run_tally(socket, {"top", "-n", "10000", "--json"}, 30s);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    top = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(top.is_discarded()) << r.out.substr(0, 200);
    if (top["processes"].size() + top.value("omitted", 0u) > 320) break;
    std::this_thread::sleep_for(200ms);
  }
  const std::size_t shown = top["processes"].size();
  const std::size_t omitted = top.value("omitted", 0u);
  EXPECT_GT(shown, 100u);
  EXPECT_GT(omitted, 0u);
  EXPECT_GT(shown + omitted, 320u);

  const auto text = run_tally(socket, {"top", "-n", "10000"}, 30s);
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find(" more processes not shown: the answer is limited to 1 MiB"),
            std::string::npos)
      << text.out.substr(text.out.size() > 300 ? text.out.size() - 300 : 0);
}

}  // namespace
}  // namespace tally::test
